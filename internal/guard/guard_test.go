package guard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// overlay mounts a kernel overlay of lower at a new directory with the
// options the Docker driver gives its volumes, and returns the merged
// view, the upper directory and an unmount function. It needs root; the
// test is skipped without it (the Docker tests cover the same through
// the engine).
func overlay(t testing.TB, lower string) (merged, upper string, umount func()) {
	t.Helper()
	base := t.TempDir()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off,index=off", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount a kernel overlay here (%v); needs root", err)
	}
	done := false
	umount = func() {
		if !done {
			done = true
			if err := unix.Unmount(merged, 0); err != nil {
				t.Errorf("unmount: %v", err)
			}
		}
	}
	t.Cleanup(umount)
	return merged, upper, umount
}

func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// tree describes every path under dir: type, mode, content hash or link
// target, and which paths share an inode.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(h[:8]) + " " + fi.ModTime().UTC().String()
			ino := fi.Sys().(*syscall.Stat_t).Ino
			if first, ok := inodes[ino]; ok {
				desc += " link:" + first
			} else {
				inodes[ino] = rel
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s: %q vs %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			d = append(d, fmt.Sprintf("%s: missing vs %q", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

func seed(t *testing.T) string {
	t.Helper()
	lower := t.TempDir()
	sh(t, lower, `
mkdir -p src/pkg docs gone/deep keep emptied .git/hooks
for i in 1 2 3; do echo "line $i" > src/f$i.txt; done
printf 'a\nb\nc\nd\ne\nf\ng\n' > src/pkg/code.go
echo doc > docs/readme.md
echo x > gone/deep/x; echo y > gone/y
echo k > keep/k; echo e1 > emptied/e1; echo e2 > emptied/e2
echo old > touched.txt; touch -d '2020-01-01' touched.txt
echo m > modeonly.sh; chmod 644 modeonly.sh
echo '[core]' > .git/config
ln -s src/f1.txt link-old
`)
	return lower
}

// agentOps is what the agent does in the merged view: every kind of
// change the issue lists.
const agentOps = `
echo new > added.txt
mkdir -p newdir/sub && echo n > newdir/sub/n.txt
printf 'a\nB\nc\nd\ne\nf\ng\nh\n' > src/pkg/code.go
rm src/f2.txt
rm -rf gone
rm -rf emptied && mkdir emptied && echo e3 > emptied/e3
mv src/f3.txt src/f3-renamed.txt
chmod 755 modeonly.sh
touch -d '2021-02-02' touched.txt
ln -s ../docs/readme.md src/link-new
rm link-old && ln -s src/f1.txt.missing link-old
echo shared > hl1 && ln hl1 hl2
ln keep/k keep/k-link
echo '[core] hooksPath = /tmp/evil' >> .git/config
echo 'echo pwned' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
printf 'bin\000ary' > blob.bin
`

func TestScanOverlay(t *testing.T) {
	lower := seed(t)
	before := tree(t, lower)
	merged, upper, umount := overlay(t, lower)
	sh(t, merged, agentOps)
	want := tree(t, merged)
	umount()
	if d := diffTrees(before, tree(t, lower)); d != "" {
		t.Fatalf("the folder changed before apply:\n%s", d)
	}
	man, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	l := Layer{Dir: upper, Host: lower, Manifest: man}
	cs, err := Scan(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteText(&buf, cs)
	got := buf.String()
	wantText := `A  added.txt
A  blob.bin
M! .git/config
A! .git/hooks/pre-commit
D  emptied/e1
D  emptied/e2
A  emptied/e3
D  gone/
A  hl1
A  hl2 (hard link of hl1)
A  keep/k-link (hard link of keep/k)
M  link-old -> src/f1.txt.missing
T  modeonly.sh
A  newdir/
A  newdir/sub/
A  newdir/sub/n.txt
D  src/f2.txt
D  src/f3.txt
A  src/f3-renamed.txt
A  src/link-new -> ../docs/readme.md
M  src/pkg/code.go
T  touched.txt
`
	if got != sortedLines(wantText) {
		t.Errorf("changes:\n%s\nwant:\n%s", got, sortedLines(wantText))
	}

	// Without naming them, the risky files stay out.
	res, err := Apply(context.Background(), l, cs, ApplyOptions{})
	if err != nil {
		t.Fatalf("apply: %v (%+v)", err, res)
	}
	if len(res.Skipped) != 2 {
		t.Errorf("skipped %+v, want the two risky files", res.Skipped)
	}
	after := tree(t, lower)
	for _, p := range []string{".git/config", ".git/hooks/pre-commit"} {
		if after[p] != before[p] {
			t.Errorf("%s applied without being named: %q", p, after[p])
		}
	}
	delete(want, ".git/config")
	delete(want, ".git/hooks/pre-commit")
	want[".git/config"] = before[".git/config"]
	if d := diffTrees(want, after); d != "" {
		t.Errorf("after apply the folder differs from the sandbox's view:\n%s", d)
	}
	// The manifest now matches the folder: scanning again shows only the
	// risky two.
	cs2, err := Scan(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs2) != 2 || !cs2[0].Risky || !cs2[1].Risky {
		t.Errorf("after apply: %+v", cs2)
	}
	if _, err := Apply(context.Background(), l, cs2, ApplyOptions{Paths: []string{".git/hooks"}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(lower, ".git/hooks/pre-commit")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("named hook not applied with its mode: %v %v", fi, err)
	}
}

func sortedLines(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	sort.Slice(ls, func(i, j int) bool { return ls[i][3:] < ls[j][3:] })
	return strings.Join(ls, "\n") + "\n"
}

func TestApplyConflictWritesNothing(t *testing.T) {
	lower := seed(t)
	man, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	merged, upper, umount := overlay(t, lower)
	sh(t, merged, `echo agent > src/f1.txt; echo agent > docs/new.md; rm -rf gone`)
	umount()
	// The user edits a file the agent also changed, and adds one inside a
	// directory the agent deleted.
	sh(t, lower, `echo user > src/f1.txt; echo user > gone/deep/user.txt`)
	before := tree(t, lower)
	l := Layer{Dir: upper, Host: lower, Manifest: man}
	cs, err := Scan(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), l, cs, ApplyOptions{})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("apply over a host edit: %v", err)
	}
	if d := diffTrees(before, tree(t, lower)); d != "" {
		t.Fatalf("a refused apply wrote:\n%s", d)
	}
	var paths []string
	for _, c := range res.Conflicts {
		paths = append(paths, c.Path)
	}
	if strings.Join(paths, ",") != "gone/deep/user.txt,src/f1.txt" {
		t.Errorf("conflicts %v", res.Conflicts)
	}
	// --force on one path writes that path only.
	if _, err := Apply(context.Background(), l, cs, ApplyOptions{Paths: []string{"src/f1.txt"}, Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(lower, "src/f1.txt")); string(b) != "agent\n" {
		t.Errorf("forced path: %q", b)
	}
	if _, err := os.Stat(filepath.Join(lower, "docs/new.md")); err == nil {
		t.Error("a path not named was applied")
	}
}

func TestApplyRefusesPlantedSymlink(t *testing.T) {
	lower := seed(t)
	outside := t.TempDir()
	man, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	merged, upper, umount := overlay(t, lower)
	sh(t, merged, `echo agent > docs/planted.txt`)
	umount()
	// Someone swaps docs for a link out of the folder while the sandbox
	// runs.
	sh(t, lower, `mv docs docs.moved && ln -s `+outside+` docs`)
	l := Layer{Dir: upper, Host: lower, Manifest: man}
	cs, err := Scan(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), l, cs, ApplyOptions{})
	if !errors.Is(err, errdefs.ErrConflict) || len(res.Conflicts) != 1 || res.Conflicts[0].Path != "docs" {
		t.Fatalf("apply over the planted link: %v %+v", err, res)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("apply wrote outside the folder: %v", ents)
	}
	// Forced, the link is replaced by the sandbox's directory, never
	// followed.
	if _, err := Apply(context.Background(), l, cs, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("forced apply wrote outside the folder: %v", ents)
	}
	if fi, err := os.Lstat(filepath.Join(lower, "docs")); err != nil || !fi.IsDir() {
		t.Fatalf("docs after a forced apply: %v %v", fi, err)
	}

	// A copied layer keeps the directory as it was, so the link shows as
	// a directory above the target: refused even with --force.
	lower2 := seed(t)
	copyDir := t.TempDir()
	sh(t, copyDir, "cp -a "+lower2+"/. .")
	man2, err := Take(context.Background(), lower2)
	if err != nil {
		t.Fatal(err)
	}
	sh(t, copyDir, `echo agent > docs/planted.txt`)
	sh(t, lower2, `rm -rf docs && ln -s `+outside+` docs`)
	l2 := Layer{Dir: copyDir, Host: lower2, Copy: true, Manifest: man2}
	cs2, err := Scan(context.Background(), l2)
	if err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		res, err := Apply(context.Background(), l2, cs2, ApplyOptions{Force: force})
		if !errors.Is(err, errdefs.ErrConflict) || len(res.Conflicts) != 1 || !res.Conflicts[0].Unforceable {
			t.Fatalf("copy, force=%v: %v %+v", force, err, res)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("apply wrote outside the folder: %v", ents)
	}
}

func TestIsRisky(t *testing.T) {
	for p, want := range map[string]bool{
		".git/config": true, ".git/hooks/pre-commit": true, ".git/hooks": true, "sub/.git/config": true,
		".envrc": true, "a/.envrc": true, ".vscode/tasks.json": true, ".git/objects/ab/cd": false,
		"x.git/config": false, "src/config": false, ".gitignore": false, ".git/configx": false,
	} {
		if IsRisky(p) != want {
			t.Errorf("IsRisky(%q) = %v", p, !want)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	lower := seed(t)
	sh(t, lower, "touch $'odd\\nname \"q\"'")
	m, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	m2, err := DecodeManifest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m.Entries()) != fmt.Sprint(m2.Entries()) {
		t.Errorf("round trip differs")
	}
	if _, ok := m2.Get("odd\nname \"q\""); !ok {
		t.Error("odd name lost")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/manifest/*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, e := range m.Entries() {
			if !ValidPath(e.Path) {
				t.Fatalf("invalid path %q accepted", e.Path)
			}
		}
		var buf bytes.Buffer
		if err := m.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeManifest(&buf)
		if err != nil || fmt.Sprint(m2.Entries()) != fmt.Sprint(m.Entries()) {
			t.Fatalf("re-encoding does not round-trip: %v", err)
		}
	})
}

func TestUnifiedDiff(t *testing.T) {
	var buf bytes.Buffer
	writeHunks(&buf, splitLines([]byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")), splitLines([]byte("a\nB\nc\nd\ne\nf\ng\nh\ni\nJ\nk")), 3)
	want := `@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -7,4 +7,5 @@
 g
 h
 i
-j
+J
+k
\ No newline at end of file
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	// patch(1) agrees.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"), 0o644)
	cmd := exec.Command("patch", "-s", "f")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("--- a/f\n+++ b/f\n" + want)
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, lerr := exec.LookPath("patch"); lerr != nil {
			t.Skip("no patch(1)")
		}
		t.Fatalf("patch: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "a\nB\nc\nd\ne\nf\ng\nh\ni\nJ\nk" {
		t.Errorf("patched: %q", b)
	}
}

// Ctrl-C during an apply: whatever point it stops at, every file is the
// old or the new content, never a mix or empty, and no staging file is
// left beside them.
func TestApplyInterrupted(t *testing.T) {
	lower := t.TempDir()
	const n = 3000
	oldC, newC := strings.Repeat("old ", 200), strings.Repeat("new ", 300)
	writeN(t, filepath.Join(lower, "d"), n, oldC)
	man, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	merged, upper, umount := overlay(t, lower)
	writeN(t, filepath.Join(merged, "d"), n, newC)
	umount()
	l := Layer{Dir: upper, Host: lower, Manifest: man}
	cs, err := Scan(context.Background(), l)
	if err != nil || len(cs) != n {
		t.Fatalf("scan: %d changes, %v", len(cs), err)
	}
	// Interrupt once the apply has written something: the first change in
	// order (f0, the scan's sorted first) turning new says it has begun.
	ctx, cancel := context.WithCancel(context.Background())
	first := filepath.Join(lower, "d", cs[0].Path[len("d/"):])
	go func() {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			if b, _ := os.ReadFile(first); string(b) == newC {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	res, err := Apply(ctx, l, cs, ApplyOptions{})
	if len(res.Applied) == 0 || len(res.Applied) == n {
		t.Fatalf("applied %d of %d: the interrupt did not land in the middle of the apply (err %v)", len(res.Applied), n, err)
	}
	t.Logf("applied %d of %d before the interrupt (err %v)", len(res.Applied), n, err)
	ents, _ := os.ReadDir(filepath.Join(lower, "d"))
	if len(ents) != n {
		t.Fatalf("%d entries, want %d (a staging file left?)", len(ents), n)
	}
	newN := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(lower, "d", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		switch string(b) {
		case oldC:
		case newC:
			newN++
		default:
			t.Fatalf("%s is neither old nor new: %d bytes", e.Name(), len(b))
		}
	}
	if newN != len(res.Applied) {
		t.Errorf("%d files new, %d reported applied", newN, len(res.Applied))
	}
}

func writeN(t testing.TB, dir string, n int, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The two ways of making a copy keep the same things: content, modes,
// nanosecond mtimes, links, hard links.
func TestCopyAndTarKeepTheFolder(t *testing.T) {
	src := seed(t)
	sh(t, src, "echo h > h1 && ln h1 h2 && mkfifo pipe && chmod 700 docs")
	want := tree(t, src)
	dst := t.TempDir()
	m, err := CopyFolder(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(want, tree(t, dst)); d != "" {
		t.Errorf("CopyFolder:\n%s", d)
	}
	if m.Len() != len(want) {
		t.Errorf("manifest of %d entries, %d paths", m.Len(), len(want))
	}
	dst2 := t.TempDir()
	cmd := exec.Command("tar", "-xpf", "-", "-C", dst2)
	pw, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m2, err := TarFolder(context.Background(), src, pw)
	pw.Close()
	if werr := cmd.Wait(); err != nil || werr != nil {
		t.Fatal(err, werr)
	}
	if d := diffTrees(want, tree(t, dst2)); d != "" {
		t.Errorf("TarFolder through tar(1):\n%s", d)
	}
	if fmt.Sprint(m.Entries()) != fmt.Sprint(m2.Entries()) {
		t.Error("the two manifests differ")
	}
}

// What the sandbox leaves must not mislead the review: a setuid or setgid
// bit is risky (left out of an apply unless the file is named), and names
// with line breaks or terminal escapes are printed quoted, one line each.
func TestReviewCannotBeForged(t *testing.T) {
	lower := seed(t)
	copyDir := t.TempDir()
	sh(t, copyDir, "cp -a "+lower+"/. .")
	man, err := Take(context.Background(), lower)
	if err != nil {
		t.Fatal(err)
	}
	sh(t, copyDir, `cp /bin/true suid && chmod 4755 suid && printf x > "$(printf 'evil\nA  harmless.txt')" && printf y > "$(printf 'esc\033[2Kname')"`)
	l := Layer{Dir: copyDir, Host: lower, Copy: true, Manifest: man}
	cs, err := Scan(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteText(&out, cs); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "\nA  harmless.txt") || strings.Contains(text, "\033") {
		t.Errorf("the listing can be forged:\n%q", text)
	}
	if !strings.Contains(text, `"evil\nA  harmless.txt"`) || !strings.Contains(text, `A! suid (setuid)`) {
		t.Errorf("listing:\n%s", text)
	}
	var patch strings.Builder
	if err := WritePatch(&patch, l, cs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(patch.String(), "\033") || strings.Contains(patch.String(), "\nA  harmless.txt") {
		t.Errorf("the patch can be forged:\n%q", patch.String())
	}
	if _, err := Apply(context.Background(), l, cs, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(lower, "suid")); !os.IsNotExist(err) {
		t.Errorf("a setuid file was applied without being named: %v", err)
	}
	// Named, it is the user's choice.
	cs, _ = Scan(context.Background(), Layer{Dir: copyDir, Host: lower, Copy: true, Manifest: man})
	if _, err := Apply(context.Background(), Layer{Dir: copyDir, Host: lower, Copy: true, Manifest: man}, cs, ApplyOptions{Paths: []string{"suid"}}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(lower, "suid")); err != nil || fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("the named setuid file: %v %v", fi, err)
	}
}

// The documented limit: with redirect_dir=off (which keeps the change
// layer readable) a directory that came from the host cannot be renamed
// inside the view; rename(2) fails with EXDEV (mv falls back to a copy).
// A directory made in the sandbox, and a file, rename as usual.
func TestRenameHostDirectoryIsEXDEV(t *testing.T) {
	lower := seed(t)
	merged, _, _ := overlay(t, lower)
	err := os.Rename(filepath.Join(merged, "docs"), filepath.Join(merged, "docs2"))
	if !errors.Is(err, syscall.EXDEV) {
		t.Errorf("renaming a host directory in the view: %v, want EXDEV", err)
	}
	if err := os.Mkdir(filepath.Join(merged, "made"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(merged, "made"), filepath.Join(merged, "made2")); err != nil {
		t.Errorf("renaming a directory made in the sandbox: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(merged, "docs"))
	for _, e := range ents {
		if !e.IsDir() {
			if err := os.Rename(filepath.Join(merged, "docs", e.Name()), filepath.Join(merged, "docs", e.Name()+".moved")); err != nil {
				t.Errorf("renaming a host file: %v", err)
			}
			break
		}
	}
}
