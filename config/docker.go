package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	units "github.com/docker/go-units"
)

// DockerLimits is the subset of docker-py's containers.run arguments sbx
// honours from sandbox.docker_runtime_kwargs: resource limits only. Zero
// means not set.
type DockerLimits struct {
	Memory     int64  // mem_limit, bytes
	MemorySwap int64  // memswap_limit, bytes (memory plus swap); -1 is unlimited swap
	ShmSize    int64  // shm_size, bytes
	CPUPeriod  int64  // cpu_period, microseconds
	CPUQuota   int64  // cpu_quota, microseconds per period; -1 is unlimited
	NanoCPUs   int64  // nano_cpus, 1e9 per CPU
	CpusetCPUs string // cpuset_cpus, e.g. "0-3,6"
	PidsLimit  int64  // pids_limit; -1 is unlimited
}

// defaultCPUPeriod is the kernel's CFS period, which Docker uses when only
// a quota is given.
const defaultCPUPeriod = 100000

// CPUs returns the CPU limit in CPUs (1.5 = one and a half), from nano_cpus
// or cpu_quota/cpu_period; 0 means unlimited.
func (l DockerLimits) CPUs() float64 {
	if l.NanoCPUs > 0 {
		return float64(l.NanoCPUs) / 1e9
	}
	if l.CPUQuota > 0 {
		period := l.CPUPeriod
		if period <= 0 {
			period = defaultCPUPeriod
		}
		return float64(l.CPUQuota) / float64(period)
	}
	return 0
}

// ParseDockerKwargs checks docker_runtime_kwargs and types the keys sbx
// supports. Anything that would widen what a sandbox may do to its host
// (privileged, capabilities, security options) is refused rather than
// silently dropped, so a config that asks for it fails loudly.
func ParseDockerKwargs(kwargs map[string]any) (DockerLimits, error) {
	var l DockerLimits
	names := make([]string, 0, len(kwargs))
	for name := range kwargs {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := l.set(name, kwargs[name]); err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", name, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, l.check()...)
	}
	return l, errors.Join(errs...)
}

func (l *DockerLimits) set(name string, v any) error {
	var err error
	switch name {
	case "mem_limit":
		l.Memory, err = byteSize(v, false)
	case "memswap_limit":
		l.MemorySwap, err = byteSize(v, true)
	case "shm_size":
		l.ShmSize, err = byteSize(v, false)
	case "cpu_period":
		l.CPUPeriod, err = integer(v)
		if err == nil && (l.CPUPeriod < 1000 || l.CPUPeriod > 1000000) {
			err = fmt.Errorf("%d is outside 1000–1000000 (microseconds)", l.CPUPeriod)
		}
	case "cpu_quota":
		l.CPUQuota, err = integer(v)
		if err == nil && l.CPUQuota != -1 && l.CPUQuota < 1000 {
			err = fmt.Errorf("%d is below 1000 microseconds (or -1 for unlimited)", l.CPUQuota)
		}
	case "nano_cpus":
		l.NanoCPUs, err = integer(v)
		if err == nil && l.NanoCPUs < 0 {
			err = fmt.Errorf("%d is negative", l.NanoCPUs)
		}
	case "pids_limit":
		l.PidsLimit, err = integer(v)
		if err == nil && l.PidsLimit < -1 {
			err = fmt.Errorf("%d is below -1 (unlimited)", l.PidsLimit)
		}
	case "cpuset_cpus":
		s, ok := v.(string)
		if !ok {
			return wrongType("a string like \"0-3,6\"", v)
		}
		if !validCpuset(s) {
			return fmt.Errorf("%q: want CPU numbers and ranges like \"0-3,6\"", s)
		}
		l.CpusetCPUs = s
	case "privileged":
		b, ok := v.(bool)
		if !ok {
			return wrongType("a boolean", v)
		}
		if b {
			return errors.New("sbx never runs privileged sandboxes; remove it")
		}
	case "cap_add", "security_opt", "ulimits":
		return errors.New("not supported by sbx: it would loosen the sandbox's isolation; remove it")
	case "cpus":
		return errors.New("not a docker-py argument; use nano_cpus (1000000000 per CPU)")
	default:
		return errors.New("not supported by sbx; supported: mem_limit, memswap_limit, shm_size, cpu_period, cpu_quota, nano_cpus, cpuset_cpus, pids_limit, privileged=False")
	}
	return err
}

// check rejects combinations the Docker daemon would reject, so the error
// appears when the config is loaded rather than when a sandbox starts.
func (l *DockerLimits) check() []error {
	var errs []error
	if l.NanoCPUs > 0 && (l.CPUQuota > 0 || l.CPUPeriod > 0) {
		errs = append(errs, errors.New("set either nano_cpus or cpu_quota/cpu_period, not both"))
	}
	if l.MemorySwap != 0 {
		switch {
		case l.Memory == 0:
			errs = append(errs, errors.New("memswap_limit needs mem_limit"))
		case l.MemorySwap > 0 && l.MemorySwap < l.Memory:
			errs = append(errs, errors.New("memswap_limit (memory plus swap) is smaller than mem_limit"))
		}
	}
	return errs
}

// integer accepts the integers a TOML table or Python dict can hold.
func integer(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case *big.Int:
		return 0, fmt.Errorf("%v is out of range", n)
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<62 {
			return int64(n), nil
		}
		return 0, fmt.Errorf("%v is not a whole number", n)
	}
	return 0, wrongType("an integer", v)
}

// byteSize reads a size as docker-py does: a number of bytes, or a string
// with an optional b/k/m/g unit (binary multiples, case-insensitive,
// optionally followed by "b").
func byteSize(v any, allowUnlimited bool) (int64, error) {
	var n int64
	switch s := v.(type) {
	case string:
		var err error
		if n, err = parseBytes(s); err != nil {
			return 0, err
		}
	default:
		var err error
		if n, err = integer(v); err != nil {
			return 0, fmt.Errorf("want bytes or a size like \"4g\": %w", err)
		}
	}
	if n == -1 && allowUnlimited {
		return n, nil
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return n, nil
}

// ParseSize reads a size as docker does (units.RAMInBytes: 512m, 4g,
// 1.5GiB, powers of 1024). It is the one size parser of sbx: the
// docker_runtime_kwargs limits and the CLI's --memory both use it.
func ParseSize(s string) (int64, error) {
	// RAMInBytes would take 1e9; docker's own flags do not.
	if strings.ContainsAny(s, "eE") {
		return 0, fmt.Errorf("%q: want a size like 512m or 4g (units b, k, m, g, t)", s)
	}
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: want a size like 512m or 4g (units b, k, m, g, t)", s)
	}
	switch {
	case n < 0 || n == math.MaxInt64:
		// RAMInBytes does not check the float-to-int64 conversion: a size
		// past 8 EiB wraps to a negative number on amd64 and saturates on
		// arm64.
		return 0, fmt.Errorf("%q is too large", s)
	case n == 0:
		return 0, fmt.Errorf("%q: want a positive size like 512m or 4g", s)
	}
	return n, nil
}

// parseBytes is ParseSize plus docker-py's -1 ("no limit") and 0 ("not
// set").
func parseBytes(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "-1":
		return -1, nil
	case "0", "0b":
		return 0, nil
	}
	return ParseSize(s)
}

func validCpuset(s string) bool {
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !allDigits(lo) || (isRange && !allDigits(hi)) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
