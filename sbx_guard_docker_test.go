package sbx_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx"
	"github.com/sbx-dev/sbx/config"
)

// listing describes every path under a folder, the same way on the host
// and in the sandbox: mode, link count, mtime and a hash for files, the
// target for links. Owners are left out (an apply keeps the host's).
const listing = `cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | while IFS= read -r p; do
if [ -L "$p" ]; then echo "$p $(stat -c %A "$p") -> $(readlink "$p")"
elif [ -f "$p" ]; then echo "$p $(stat -c '%A %h %.9Y' "$p") $(sha256sum < "$p" | cut -c1-16)"
else echo "$p $(stat -c %A "$p")"; fi
done`

func hostListing(t *testing.T, dir string) string {
	t.Helper()
	out, err := osexec.Command("bash", "-c", listing, "_", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("listing: %v %s", err, out)
	}
	return string(out)
}

func sandboxListing(t *testing.T, sb *sbx.Sandbox) string {
	t.Helper()
	script := strings.ReplaceAll(listing, `"$1"`, "/workspace")
	out, code, err := sb.Exec(context.Background(), script, 60*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("listing in the sandbox: %d %v %s", code, err, out)
	}
	return strings.ReplaceAll(out, "\r\n", "\n") + "\n"
}

func hostSh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := osexec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// seedFolder is a user's project: a git repository with files, a
// directory to delete and one to empty, and a file whose mode changes.
func seedFolder(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	hostSh(t, ws, `
mkdir -p src/pkg docs gone/deep emptied
for i in 1 2 3; do echo "line $i" > src/f$i.txt; done
printf 'a\nb\nc\n' > src/pkg/code.go
echo doc > docs/readme.md
echo x > gone/deep/x; echo y > gone/y
echo e1 > emptied/e1
echo m > run.sh; chmod 644 run.sh
ln -s src/f1.txt link-old
git init -q -b main . && git -c user.name=u -c user.email=u@x add -A && git -c user.name=u -c user.email=u@x commit -qm start
chown -R 4321:4321 .
chmod 755 .
`)
	return ws
}

// agentWork is everything the issue lists: writes, deletes of files and
// whole directories, renames, chmod, symlinks, hard links, a commit.
const agentWork = `bash -e <<'AGENT'
cd /workspace
echo new > added.txt
mkdir -p newdir/sub && echo n > newdir/sub/n.txt
printf 'a\nB\nc\nd\n' > src/pkg/code.go
rm src/f2.txt
rm -rf gone
rm -rf emptied && mkdir emptied && echo e3 > emptied/e3
mv src/f3.txt src/f3-renamed.txt
chmod 755 run.sh
ln -s ../docs/readme.md src/link-new
rm link-old && ln -s docs link-old
echo shared > hl1 && ln hl1 hl2
git -c user.name=agent -c user.email=a@x add -A
git -c user.name=agent -c user.email=a@x commit -qm 'agent work'
echo '[alias] x = !touch /tmp/pwned' >> .git/config
AGENT`

func guardVolumes(t *testing.T, id string) []string {
	t.Helper()
	c := needDocker(t)
	res, err := c.VolumeList(context.Background(), client.VolumeListOptions{Filters: client.Filters{}.Add("label", "dev.sbx.session="+id)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range res.Items {
		names = append(names, v.Name)
	}
	return names
}

func TestDockerGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		// env configures the runtime; opts the create.
		env  func(ws string) []string
		opts func(ws string) sbx.CreateOptions
		mode string
	}{
		{"overlay", func(string) []string { return []string{"SANDBOX_USER_ID=4321"} },
			func(ws string) sbx.CreateOptions {
				return sbx.CreateOptions{Guard: true, Volumes: []config.Volume{{Source: ws, Target: "/workspace", Mode: "rw"}}}
			}, "overlay"},
		// The fallback, forced through the configuration as a user would.
		{"copy", func(ws string) []string {
			return []string{"SANDBOX_USER_ID=4321", "WORKSPACE_BASE=" + ws, "WORKSPACE_GUARD=true", "WORKSPACE_GUARD_MODE=copy"}
		}, func(string) sbx.CreateOptions { return sbx.CreateOptions{} }, "copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ws := seedFolder(t)
			before := hostListing(t, ws)
			rt := openRuntime(t, tc.env(ws)...)
			co := tc.opts(ws)
			co.ID = randID(t, "guard")
			sb := create(t, rt, co)
			t.Cleanup(func() { rt.RemoveWith(context.Background(), co.ID, sbx.RemoveOptions{Force: true}) })
			if got := exec(t, sb, "id -u && "+agentWork+"\ngit -C /workspace log --format=%s | head -1"); got != "4321\nagent work" {
				t.Fatalf("agent: %q", got)
			}
			view := sandboxListing(t, sb)
			if got := hostListing(t, ws); got != before {
				t.Fatalf("the host folder changed while the sandbox ran:\n%s\nwas\n%s", got, before)
			}
			ds, err := rt.Diff(ctx, co.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].Mode != tc.mode || ds[0].Target != "/workspace" {
				t.Fatalf("diff: %+v", ds)
			}
			var text bytes.Buffer
			ds[0].WriteText(&text)
			for _, want := range []string{"A  added.txt\n", "D  gone/\n", "D  src/f2.txt\n", "A  src/f3-renamed.txt\n", "T  run.sh\n", "M! .git/config\n", "A  hl2 (hard link of hl1)\n", "M  link-old -> docs\n", "D  emptied/e1\n"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("diff lacks %q:\n%s", want, text.String())
				}
			}
			var patch bytes.Buffer
			ds[0].WritePatch(&patch)
			if !strings.Contains(patch.String(), "-b\n+B\n c\n+d\n") {
				t.Errorf("patch:\n%s", patch.String())
			}

			if _, err := rt.Apply(ctx, co.ID, sbx.ApplyOptions{}); !errors.Is(err, sbx.ErrConflict) {
				t.Fatalf("apply while running: %v", err)
			}
			if err := rt.RemoveWith(ctx, co.ID, sbx.RemoveOptions{}); !errors.Is(err, sbx.ErrConflict) {
				t.Fatalf("rm with unapplied changes: %v", err)
			}
			if err := rt.Stop(ctx, co.ID, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if got := hostListing(t, ws); got != before {
				t.Fatalf("the host folder changed after the stop:\n%s", got)
			}
			res, err := rt.Apply(ctx, co.ID, sbx.ApplyOptions{})
			if err != nil {
				t.Fatalf("apply: %v %+v", err, res)
			}
			if len(res) != 1 || len(res[0].Skipped) != 1 || res[0].Skipped[0].Path != ".git/config" {
				t.Fatalf("apply did not leave exactly .git/config out: %+v", res)
			}
			if b, _ := os.ReadFile(filepath.Join(ws, ".git/config")); strings.Contains(string(b), "pwned") {
				t.Fatal("the risky .git/config was applied without being named")
			}
			if _, err := rt.Apply(ctx, co.ID, sbx.ApplyOptions{Paths: []string{"/workspace/.git/config"}}); err != nil {
				t.Fatal(err)
			}
			if got := hostListing(t, ws); got != view {
				t.Fatalf("after apply the folder is not what the sandbox saw:\n%s\nsandbox:\n%s", got, view)
			}
			out, err := osexec.Command("git", "-c", "safe.directory=*", "-C", ws, "log", "--format=%s").Output()
			if err != nil || string(out) != "agent work\nstart\n" {
				t.Errorf("host git log: %q %v", out, err)
			}
			ds, err = rt.Diff(ctx, co.ID)
			if err != nil || len(ds[0].Changes) != 0 {
				t.Fatalf("diff after apply: %v %+v", err, ds)
			}
			if err := rt.RemoveWith(ctx, co.ID, sbx.RemoveOptions{}); err != nil {
				t.Fatal(err)
			}
			if v := guardVolumes(t, co.ID); len(v) != 0 {
				t.Errorf("volumes left after rm: %v", v)
			}
		})
	}
}

// A host edit during the session stops the apply with nothing written;
// discard drops the layer and the restarted sandbox sees the host.
func TestDockerGuardConflictAndDiscard(t *testing.T) {
	ctx := context.Background()
	ws := seedFolder(t)
	rt := openRuntime(t)
	id := randID(t, "guard")
	sb := create(t, rt, sbx.CreateOptions{ID: id, Guard: true, Volumes: []config.Volume{{Source: ws, Target: "/workspace", Mode: "rw"}}})
	t.Cleanup(func() { rt.RemoveWith(context.Background(), id, sbx.RemoveOptions{Force: true}) })
	exec(t, sb, "cd /workspace && echo agent > src/f1.txt && echo agent > docs/new.md")
	hostSh(t, ws, "echo user > src/f1.txt")
	if err := rt.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	before := hostListing(t, ws)
	res, err := rt.Apply(ctx, id, sbx.ApplyOptions{})
	if !errors.Is(err, sbx.ErrConflict) || len(res) != 1 || len(res[0].Conflicts) != 1 || res[0].Conflicts[0].Path != "src/f1.txt" {
		t.Fatalf("apply over a host edit: %v %+v", err, res)
	}
	if got := hostListing(t, ws); got != before {
		t.Fatalf("a refused apply wrote:\n%s", got)
	}
	if err := rt.Discard(ctx, id); err != nil {
		t.Fatal(err)
	}
	ds, err := rt.Diff(ctx, id)
	if err != nil || len(ds[0].Changes) != 0 {
		t.Fatalf("diff after discard: %v %+v", err, ds)
	}
	sb2, err := rt.Attach(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := exec(t, sb2, "cat /workspace/src/f1.txt; ls /workspace/docs"); got != "user\nreadme.md" {
		t.Fatalf("after discard the sandbox sees %q", got)
	}
}

// A symbolic link planted in the host folder while the sandbox runs, to
// send the apply's writes out of the folder, is refused; forced, it is
// replaced, never followed.
func TestDockerGuardPlantedSymlink(t *testing.T) {
	ctx := context.Background()
	ws := seedFolder(t)
	outside := t.TempDir()
	rt := openRuntime(t)
	id := randID(t, "guard")
	sb := create(t, rt, sbx.CreateOptions{ID: id, Guard: true, Volumes: []config.Volume{{Source: ws, Target: "/workspace", Mode: "rw"}}})
	t.Cleanup(func() { rt.RemoveWith(context.Background(), id, sbx.RemoveOptions{Force: true}) })
	exec(t, sb, "echo agent > /workspace/docs/planted.txt")
	hostSh(t, ws, "mv docs docs.moved && ln -s "+outside+" docs")
	if err := rt.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Apply(ctx, id, sbx.ApplyOptions{}); !errors.Is(err, sbx.ErrConflict) {
		t.Fatalf("apply through a planted link: %v", err)
	}
	if _, err := rt.Apply(ctx, id, sbx.ApplyOptions{Force: true}); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("apply wrote outside the folder: %v", ents)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "docs/planted.txt")); err != nil || string(b) != "agent\n" {
		t.Fatalf("docs/planted.txt: %q %v", b, err)
	}
}
