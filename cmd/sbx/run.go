package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
)

// runOptions are `sbx run`'s flags and operands.
type runOptions struct {
	Remove      bool
	Detach      bool
	Name        string
	Volumes     []config.Volume
	Env         map[string]string
	Image       string
	CPUs        float64
	MemoryBytes int64
	Plugins     []string
	Labels      map[string]string
	NoAppPorts  bool
	// NetworkPolicy is the egress policy or the name of one ("" is
	// sandbox.network_policy).
	NetworkPolicy string
	// Guard guards the writable host-directory mounts; GuardMode picks
	// overlay or copy.
	Guard     bool
	GuardMode string
	// Protocol is what the sandbox speaks besides sbx's own use of it:
	// protocolOpenHands (always) or protocolSWEReX (also SWE-ReX's, for
	// SWE-agent; implies Detach).
	Protocol string
	// JSON prints a detached sandbox as JSON instead of its id.
	JSON bool
	// Timeout is the command's hard timeout; 0 waits as long as it runs.
	Timeout time.Duration
	// Command is empty for an interactive shell.
	Command []string
}

const runAbout = `
Create a sandbox and run COMMAND in its shell, printing the output and
exiting with the command's exit status. Without a command, read commands
from stdin into the sandbox's shell (a prompt is shown on a terminal).

One argument is given to the shell as written (so 'ls | wc -l' works);
several are quoted as needed and joined.

Without --rm or -d the sandbox is stopped at exit and kept until
'sbx rm' or 'sbx gc'; with --rm it is removed, also on Ctrl-C; with -d it
is left running and its id printed.

With --protocol swerex the sandbox also answers SWE-ReX's protocol, as
SWE-agent's 'remote' deployment expects: it is started detached, and its
SWE-ReX host, port and token are printed with a SWE-agent command line
that uses them.

--network-policy limits where the sandbox may connect, enforced outside it
(root inside cannot lift it): none (loopback only), an allow-list of
domains, *.wildcards and CIDRs ('!entry' denies), or open with a deny-list
('open,!x'). 'sbx network ID' changes it while the sandbox runs, and
'sbx logs --network ID' shows what was refused.`

// runFlags are `sbx run`'s flags as typed, before checking.
type runFlags struct {
	o       runOptions
	vols    []string
	envs    []string
	labels  []string
	memory  string
	plugins string
}

func (f *runFlags) define(fs *pflag.FlagSet) {
	fs.BoolVar(&f.o.Remove, "rm", false, "remove the sandbox when the command ends")
	fs.BoolVarP(&f.o.Detach, "detach", "d", false, "leave the sandbox running and print its id")
	fs.StringVar(&f.o.Name, "name", "", "sandbox `ID` (default: random)")
	stringsFlag(fs, &f.vols, "volume", "v", "mount `HOST:DIR[:ro|:guard]` (repeatable)")
	fs.BoolVar(&f.o.Guard, "guard", false, "guard the mounted host folders: the sandbox works on a copy-on-write view; see 'sbx diff', 'sbx apply', 'sbx discard'")
	fs.StringVar(&f.o.GuardMode, "guard-mode", "", "make guarded folders as an `overlay` or a `copy` (default: overlay where the engine can)")
	stringsFlag(fs, &f.envs, "env", "e", "set `K=V` in the sandbox's shell; K alone takes the host's value (repeatable)")
	stringsFlag(fs, &f.labels, "label", "l", "add the label `K=V` to the sandbox (repeatable; dev.sbx.* are sbx's own)")
	fs.StringVar(&f.o.Image, "image", "", "run `IMAGE` instead of the configured one")
	fs.Float64Var(&f.o.CPUs, "cpus", 0, "limit to `N` CPUs")
	fs.StringVar(&f.memory, "memory", "", "limit memory to `SIZE` (e.g. 512m, 2g)")
	fs.StringVar(&f.plugins, "plugins", "", "sandboxd plugins `p1,p2` (jupyter gives run_ipython)")
	fs.BoolVar(&f.o.NoAppPorts, "no-app-ports", false, "do not publish APP_PORT_1/2 (faster bursts of sandboxes)")
	fs.StringVar(&f.o.NetworkPolicy, "network-policy", "", "egress `POLICY`: none, open, an allow-list like 'pypi.org,*.pythonhosted.org,10.0.0.0/8' ('!x' denies), or a name from [sandbox.network_policies]")
	fs.StringVar(&f.o.Protocol, "protocol", protocolOpenHands, "also speak `PROTOCOL`: "+strings.Join(protocols, " or ")+" (swerex implies -d)")
	fs.BoolVar(&f.o.JSON, "json", false, "with -d or --protocol swerex, print the sandbox as a JSON object")
	fs.DurationVar(&f.o.Timeout, "timeout", 0, "give up on the command after `DURATION` (exit status 124; default: wait until it ends)")
	// As docker run: flags after the first operand are the command's.
	fs.SetInterspersed(false)
}

// emptyPolicyFlag refuses --network-policy "": a script passing an unset
// variable would otherwise get the open network without a word.
func emptyPolicyFlag(fs *pflag.FlagSet) error {
	if fl := fs.Lookup("network-policy"); fl != nil && fl.Changed && strings.TrimSpace(fl.Value.String()) == "" {
		return usageErrorf("run", "--network-policy needs a policy: none, open, an allow-list, or a name from [sandbox.network_policies]")
	}
	return nil
}

func (a *app) runCmd() *cobra.Command {
	f := &runFlags{}
	c := newCommand("run [OPTIONS] [--] [COMMAND [ARG...]]", "Create a sandbox and run a command or a shell in it", runAbout,
		func(c *cobra.Command, args []string) error {
			if err := emptyPolicyFlag(c.Flags()); err != nil {
				return err
			}
			o, err := a.runOptions(f, args)
			if err != nil {
				return err
			}
			return a.runSandbox(c.Context(), o)
		})
	f.define(c.Flags())
	return c
}

// parseRun parses `sbx run`'s arguments without running anything.
func (a *app) parseRun(args []string) (runOptions, error) {
	f := &runFlags{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.define(fs)
	if err := fs.Parse(args); err != nil {
		return runOptions{}, usageErrorf("run", "%v", err)
	}
	if err := emptyPolicyFlag(fs); err != nil {
		return runOptions{}, err
	}
	return a.runOptions(f, fs.Args())
}

// The values of `sbx run --protocol`.
const (
	protocolOpenHands = "openhands"
	protocolSWEReX    = "swerex"
)

var protocols = []string{protocolOpenHands, protocolSWEReX}

func (a *app) runOptions(f *runFlags, args []string) (runOptions, error) {
	o := f.o
	o.Command = args
	switch o.Protocol {
	case protocolOpenHands:
	case protocolSWEReX:
		// SWE-agent drives the sandbox from its own process: it must
		// outlive this one.
		if o.Remove {
			return o, usageErrorf("run", "--protocol swerex starts the sandbox detached and cannot be combined with --rm; remove it with 'sbx rm ID' when SWE-agent is done")
		}
		if len(o.Command) > 0 {
			return o, usageErrorf("run", "--protocol swerex takes no command: SWE-agent sends the commands")
		}
		o.Detach = true
	default:
		return o, usageErrorf("run", "--protocol %q: want one of %s", o.Protocol, strings.Join(protocols, ", "))
	}
	if o.JSON && !o.Detach {
		return o, usageErrorf("run", "--json describes a detached sandbox: use it with -d or --protocol swerex")
	}
	if o.Remove && o.Detach {
		return o, usageErrorf("run", "--rm and -d cannot be combined: a detached sandbox is left running")
	}
	if o.Detach && len(o.Command) > 0 {
		return o, usageErrorf("run", "-d takes no command; start the sandbox with 'sbx run -d', then 'sbx exec ID -- COMMAND'")
	}
	switch o.GuardMode {
	case "", "overlay", "copy":
	default:
		return o, usageErrorf("run", "--guard-mode %q: want overlay or copy", o.GuardMode)
	}
	if o.Timeout < 0 {
		return o, usageErrorf("run", "--timeout must not be negative")
	}
	if o.CPUs < 0 {
		return o, usageErrorf("run", "--cpus must not be negative")
	}
	for _, v := range f.vols {
		vol, err := parseVolumeFlag(v)
		if err != nil {
			return o, usageErrorf("run", "-v %s: %v", v, err)
		}
		o.Volumes = append(o.Volumes, vol)
	}
	for _, kv := range f.envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// As docker: a bare name forwards the host's value, if any.
			if v = a.getenv(k); v == "" {
				continue
			}
		}
		if k == "" {
			return o, usageErrorf("run", "-e %s: missing the variable name", kv)
		}
		if o.Env == nil {
			o.Env = map[string]string{}
		}
		o.Env[k] = v
	}
	for _, kv := range f.labels {
		// As docker: a label without a value has an empty one.
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "":
			return o, usageErrorf("run", "-l %s: missing the label name", kv)
		case strings.HasPrefix(k, sbxLabelPrefix):
			// They say what sbx made and who holds it; gc and rm rely on them.
			return o, usageErrorf("run", "-l %s: labels starting with %s are sbx's own", kv, sbxLabelPrefix)
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	if f.memory != "" {
		n, err := config.ParseSize(f.memory)
		if err != nil {
			return o, usageErrorf("run", "--memory %s: %v", f.memory, err)
		}
		o.MemoryBytes = n
	}
	for p := range strings.SplitSeq(f.plugins, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Plugins = append(o.Plugins, p)
		}
	}
	return o, nil
}

// sbxLabelPrefix starts the labels sbx itself puts on sandboxes.
const sbxLabelPrefix = "dev.sbx."

// parseVolumeFlag parses HOST:DIR[:ro|rw]. A host part that is a path
// (it starts with / . or ~) is made absolute, since the engine resolves
// paths against its own directory, not the user's; anything else names a
// volume, as with docker -v.
func parseVolumeFlag(s string) (config.Volume, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return config.Volume{}, errors.New("want HOST:DIR or HOST:DIR:ro")
	}
	host, dir := parts[0], parts[1]
	v := config.Volume{Mode: "rw"}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.Mode, v.ReadOnly = "ro", true
		case "rw":
		case "guard":
			v.Mode, v.Guard = "guard", true
		default:
			return config.Volume{}, fmt.Errorf("mode %q: want ro, rw or guard", parts[2])
		}
	}
	if host == "" {
		return config.Volume{}, errors.New("the host part is empty")
	}
	if !path.IsAbs(dir) {
		return config.Volume{}, fmt.Errorf("%q: the directory in the sandbox must be an absolute path", dir)
	}
	v.Target = path.Clean(dir)
	switch {
	case strings.HasPrefix(host, "/"), strings.HasPrefix(host, "."):
		abs, err := filepath.Abs(host)
		if err != nil {
			return config.Volume{}, fmt.Errorf("resolving %s: %w", host, err)
		}
		v.Source = abs
	case strings.HasPrefix(host, "~"):
		return config.Volume{}, errors.New("~ is not expanded here; let your shell do it (write it unquoted, or use $HOME)")
	default:
		v.Source, v.Named = host, true
	}
	return v, nil
}

// runSandbox is `sbx run`.
func (a *app) runSandbox(ctx context.Context, o runOptions) (err error) {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	// A create cut short by Ctrl-C cleans up after itself (the driver and
	// the SDK remove what they made, on a detached context).
	sb, err := rt.Create(ctx, sbx.CreateOptions{
		ID: o.Name, Image: o.Image, Env: o.Env, Volumes: o.Volumes, Plugins: o.Plugins,
		Labels: o.Labels, Remove: o.Remove, Keep: o.Detach, CPUs: o.CPUs, MemoryBytes: o.MemoryBytes, NoAppPorts: o.NoAppPorts,
		SWEReX: o.Protocol == protocolSWEReX, NetworkPolicy: o.NetworkPolicy, Guard: o.Guard, GuardMode: o.GuardMode,
	})
	if err != nil {
		if errors.Is(err, sbx.ErrAlreadyExists) {
			return fmt.Errorf("%w; pick another --name, or use `sbx exec %s` to run in it", err, o.Name)
		}
		return err
	}
	if o.Detach {
		switch {
		case o.JSON:
			err = writeJSON(a.stdout, sandboxesJSON([]sbx.Info{sb.Info()})[0])
		case o.Protocol == protocolSWEReX:
			writeSWEReX(a.stdout, sb.ID(), sb.SWEReX())
		default:
			fmt.Fprintln(a.stdout, sb.ID())
		}
		return errors.Join(err, sb.Close(context.WithoutCancel(ctx)))
	}
	defer func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if sb.Info().Guarded {
			defer a.guardHint(cctx, rt, sb.ID())
		}
		if cerr := sb.Close(cctx); cerr != nil {
			what := "stopping"
			if o.Remove {
				what = "removing"
			}
			cerr = fmt.Errorf("%s sandbox %s: %w", what, sb.ID(), cerr)
			var st exitStatus
			if err == nil || errors.As(err, &st) && st == 0 {
				err = cerr
			} else {
				fmt.Fprintf(a.stderr, "sbx: %s\n", cerr)
			}
		}
	}()
	if len(o.Command) == 0 {
		return a.shell(ctx, sb.Client)
	}
	res, err := sb.ExecWith(ctx, shellJoin(o.Command), a.sdkExecOptions(o.Timeout))
	return a.commandResult(res, err, o.Timeout, sb.ID())
}

// guardHint says, after a guarded run, that its changes wait for the
// user and how to get them.
func (a *app) guardHint(ctx context.Context, rt *sbx.Runtime, id string) {
	ds, err := rt.Diff(ctx, id)
	if err != nil {
		return
	}
	n := 0
	for _, d := range ds {
		n += len(d.Changes)
	}
	if n > 0 {
		fmt.Fprintf(a.stderr, "sbx: %d change(s) to the guarded folder wait in sandbox %s: review them with `sbx diff %s`, write them with `sbx apply %s`, or drop them with `sbx discard %s`\n", n, id, id, id, id)
	}
}

// cleanupContext outlives a cancelled ctx, so that Ctrl-C still removes
// or stops the sandbox, but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// shellJoin makes one shell command of args: one argument is the command
// as written; several are each quoted where the shell would change them.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	q := make([]string, len(args))
	for i, s := range args {
		q[i] = shellQuote(s)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
