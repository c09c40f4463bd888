package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteRootfsTar(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string, mode os.FileMode, data string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	mk("usr/bin/tool", 0o755, "#!/bin/sh\n")
	mk("usr/bin/su", 0o755|os.ModeSetuid, "suid")
	mk("etc/secret", 0o640, "s3cret")
	mk("usr/lib/a", 0o644, "same inode")
	if err := os.Link(filepath.Join(root, "usr/lib/a"), filepath.Join(root, "usr/lib/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/mounts", filepath.Join(root, "etc/mtab")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		if err := os.Lchown(filepath.Join(root, "etc/secret"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		// Device nodes are left out of the image.
		if err := syscall.Mknod(filepath.Join(root, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
	}

	var buf bytes.Buffer
	if err := writeRootfsTar(t.Context(), &buf, root); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	content := map[string]string{}
	var order []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		order = append(order, h.Name)
		data, _ := io.ReadAll(tr)
		content[h.Name] = string(data)
	}
	t.Logf("entries: %q", order)

	check := func(name string, typ byte, mode int64) *tar.Header {
		t.Helper()
		h := got[name]
		if h == nil {
			t.Errorf("%s is missing", name)
			return &tar.Header{}
		}
		if h.Typeflag != typ || h.Mode != mode {
			t.Errorf("%s: type %c mode %o, want %c %o", name, h.Typeflag, h.Mode, typ, mode)
		}
		return h
	}
	check("usr/", tar.TypeDir, 0o755)
	check("usr/bin/tool", tar.TypeReg, 0o755)
	check("usr/bin/su", tar.TypeReg, 0o4755)
	check("tmp/", tar.TypeDir, 0o1777)
	check("fifo", tar.TypeFifo, 0o600)
	if h := check("bin", tar.TypeSymlink, 0o777); h.Linkname != "usr/bin" {
		t.Errorf("bin -> %q", h.Linkname)
	}
	if h := check("etc/mtab", tar.TypeSymlink, 0o777); h.Linkname != "/proc/self/mounts" {
		t.Errorf("etc/mtab -> %q", h.Linkname)
	}
	check("usr/lib/a", tar.TypeReg, 0o644)
	if h := check("usr/lib/b", tar.TypeLink, 0o644); h.Linkname != "usr/lib/a" || h.Size != 0 {
		t.Errorf("hard link: %+v", h)
	}
	if content["usr/lib/a"] != "same inode" || content["usr/bin/tool"] != "#!/bin/sh\n" {
		t.Errorf("content: %q", content)
	}
	h := check("etc/secret", tar.TypeReg, 0o640)
	if asRoot && (h.Uid != 1234 || h.Gid != 5678) {
		t.Errorf("etc/secret owner %d:%d, want 1234:5678", h.Uid, h.Gid)
	}
	if !asRoot && h.Uid != os.Geteuid() {
		t.Errorf("etc/secret owner %d, want %d", h.Uid, os.Geteuid())
	}
	if h.Uname != "" || h.Gname != "" {
		t.Errorf("names %q/%q: owners must be numeric only", h.Uname, h.Gname)
	}
	if _, ok := got["null"]; ok {
		t.Error("a device node was written")
	}
	if _, ok := got["./"]; ok {
		t.Error("the root itself was written")
	}
}

func TestWriteRootfsTarCancelled(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := writeRootfsTar(ctx, io.Discard, root); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestTidyRootfs(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease": "x",
		"var/cache/apt/pkgcache.bin":                                "x",
		"var/cache/apt/archives/bash_5.2_amd64.deb":                 "x",
		"var/log/dpkg.log":                                          "x",
		"usr/share/man/man1/bash.1.gz":                              "x",
		"usr/share/doc/bash/copyright":                              "keep",
		"usr/share/doc/bash/README":                                 "x",
		"usr/share/doc/empty/changelog.gz":                          "x",
		"usr/share/locale/de/LC_MESSAGES/bash.mo":                   "x",
		"usr/share/locale/locale.alias":                             "keep",
		"etc/hostname":                                              "buildhost",
		"etc/machine-id":                                            "0123",
		"usr/bin/sh":                                                "sh",
		"usr/bin/other":                                             "keep",
	}
	for rel, data := range files {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	// An absolute symlink, as a build host's resolv.conf may be: it must
	// be replaced, not written through to the host.
	outside := filepath.Join(t.TempDir(), "host-resolv.conf")
	os.WriteFile(outside, []byte("nameserver 10.0.0.1\n"), 0o644)
	os.Symlink(outside, filepath.Join(root, "etc/resolv.conf"))

	if err := tidyRootfs(root); err != nil {
		t.Fatal(err)
	}
	for rel, data := range files {
		b, err := os.ReadFile(filepath.Join(root, rel))
		switch {
		case data == "keep" || rel == "usr/bin/sh":
			if err != nil {
				t.Errorf("%s was removed", rel)
			}
		case rel == "etc/hostname" || rel == "etc/machine-id":
			if err != nil || len(b) != 0 {
				t.Errorf("%s = %q, %v; want empty", rel, b, err)
			}
		default:
			if err == nil {
				t.Errorf("%s was kept", rel)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/doc/empty")); err == nil {
		t.Error("an emptied doc directory was kept")
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/resolv.conf")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("etc/resolv.conf: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "nameserver 10.0.0.1\n" {
		t.Errorf("the host file behind the symlink changed: %q", b)
	}
	for _, dir := range []string{"var/lib/apt/lists", "var/cache/apt/archives", "usr/share/locale", "usr/share/doc/bash"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}

	if err := tidyRootfs(t.TempDir()); err == nil {
		t.Error("a tree without /bin/sh passed")
	}
}
