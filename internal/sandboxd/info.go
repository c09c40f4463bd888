package sandboxd

import (
	"bytes"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/sandboxapi"
)

func (s *Server) serverInfo(w http.ResponseWriter, r *http.Request) error {
	now := s.opts.Now()
	info := sandboxapi.ServerInfo{
		Uptime:    now.Sub(s.start).Seconds(),
		IdleTime:  now.Sub(time.Unix(0, s.lastExec.Load())).Seconds(),
		Resources: s.resources(now),
		Sbx:       &sandboxapi.SbxInfo{Version: s.opts.Version, API: "v1", Capabilities: slices.Clone(s.caps)},
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// cpuSampler turns the process's CPU time into a percentage over the time
// since the previous sample, so /server_info never sleeps to measure.
type cpuSampler struct {
	mu      sync.Mutex
	lastAt  time.Time
	lastCPU time.Duration
}

func (c *cpuSampler) sample(now time.Time) float64 {
	cpu := processCPU()
	c.mu.Lock()
	defer c.mu.Unlock()
	pct := 0.0
	if !c.lastAt.IsZero() {
		if wall := now.Sub(c.lastAt); wall > 0 {
			pct = float64(cpu-c.lastCPU) / float64(wall) * 100
		}
	}
	c.lastAt, c.lastCPU = now, cpu
	return pct
}

func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s *Server) resources(now time.Time) sandboxapi.Resources {
	var res sandboxapi.Resources
	res.CPUPercent = s.cpu.sample(now)
	page := int64(os.Getpagesize())
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 2 {
			vms, _ := strconv.ParseInt(f[0], 10, 64)
			rss, _ := strconv.ParseInt(f[1], 10, 64)
			res.Memory.VMS, res.Memory.RSS = vms*page, rss*page
		}
	}
	if total := memTotal(); total > 0 {
		res.Memory.Percent = float64(res.Memory.RSS) / float64(total) * 100
	}
	var st unix.Statfs_t
	if unix.Statfs("/", &st) == nil {
		bs := int64(st.Bsize)
		total := int64(st.Blocks) * bs
		free := int64(st.Bavail) * bs
		used := (int64(st.Blocks) - int64(st.Bfree)) * bs
		res.Disk = sandboxapi.DiskStats{Total: total, Used: used, Free: free}
		if used+free > 0 {
			res.Disk.Percent = float64(int(float64(used)/float64(used+free)*1000+0.5)) / 10
		}
	}
	if b, err := os.ReadFile("/proc/self/io"); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			k, v, ok := bytes.Cut(line, []byte(": "))
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(string(v), 10, 64)
			switch string(k) {
			case "read_bytes":
				res.IO.ReadBytes = n
			case "write_bytes":
				res.IO.WriteBytes = n
			}
		}
	}
	return res
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
