package transfer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestListFiles(t *testing.T) {
	work := t.TempDir()
	for _, d := range []string{"src", "Docs", "ab", "ab-c", ".git", "nested/inner"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"setup.py", "README.md", "a.txt", "B.txt", ".env", "nested/file.txt"} {
		writeFile(t, filepath.Join(work, f), "x", 0o644)
	}
	for name, target := range map[string]string{
		"link-to-dir":  "src",       // counts as a directory (isdir follows links)
		"link-to-file": "a.txt",     // counts as a file
		"dangling":     "nowhere",   // os.path.exists is false: left out
		"loop":         "loop",      // likewise
		"Zlink":        "nested/..", // a directory
	} {
		if err := os.Symlink(target, filepath.Join(work, name)); err != nil {
			t.Fatal(err)
		}
	}
	root := []string{
		".git/", "ab-c/", "ab/", "Docs/", "link-to-dir/", "nested/", "src/", "Zlink/",
		".env", "a.txt", "B.txt", "link-to-file", "README.md", "setup.py",
	}
	cases := []struct {
		name, path string
		want       []string
	}{
		{"absent means workdir", "", root},
		{"absolute", work, root},
		{"absolute with slash", work + "/", root},
		{"relative joins workdir", "nested", []string{"inner/", "file.txt"}},
		{"relative with dot-dot", "nested/inner/..", []string{"inner/", "file.txt"}},
		{"relative through a link", "link-to-dir", []string{}},
		{"empty directory", "nested/inner", []string{}},
		{"missing", "missing", []string{}},
		{"file", "a.txt", []string{}},
		{"file with slash", "a.txt/", []string{}},
		{"absolute elsewhere", filepath.Join(work, "nested"), []string{"inner/", "file.txt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ListFiles(work, tc.path)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ListFiles(%q) = %q, want %q", tc.path, got, tc.want)
			}
			// Never nil: the route must answer [] rather than null.
			b, _ := json.Marshal(got)
			if len(tc.want) == 0 && string(b) != "[]" {
				t.Fatalf("encodes as %s", b)
			}
		})
	}
	// Relative paths use the workdir given, not the process's cwd.
	if got := ListFiles(filepath.Join(work, "nested"), "inner"); len(got) != 0 {
		t.Fatalf("got %q", got)
	}
	if got := ListFiles(work+"/", "nested"); !slices.Equal(got, []string{"inner/", "file.txt"}) {
		t.Fatalf("workdir with trailing slash: %q", got)
	}
}

func TestListFilesOrder(t *testing.T) {
	// Python: sort(key=str.lower) over "name/" for directories, stable.
	work := t.TempDir()
	dirs := []string{"b", "B-x", "a_b", "a.b", "a", "ÄÖ", "İx", "ia", "Z"}
	files := []string{"b.txt", "B", "_x", "~y", "a", "10", "9", "Ω", "ω1"}
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		writeFile(t, filepath.Join(work, "files", f), "", 0o644)
	}
	// Expected orders worked out with Python's str.lower and code-point
	// comparison: "/" (0x2f) sorts before letters and "_" (0x5f), after "-"
	// (0x2d) and "." (0x2e); "İ".lower() is "i̇", whose U+0307 sorts after "a".
	got := ListFiles(work, "")
	want := []string{"a.b/", "a/", "a_b/", "B-x/", "b/", "files/", "ia/", "İx/", "Z/", "ÄÖ/"}
	if !slices.Equal(got, want) {
		t.Fatalf("directories: got %q, want %q", got, want)
	}
	got = ListFiles(work, "files")
	want = []string{"10", "9", "_x", "a", "B", "b.txt", "~y", "Ω", "ω1"}
	if !slices.Equal(got, want) {
		t.Fatalf("files: got %q, want %q", got, want)
	}
}

func TestListFilesUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	work := t.TempDir()
	locked := filepath.Join(work, "locked")
	writeFile(t, filepath.Join(locked, "x"), "x", 0o644)
	os.Chmod(locked, 0)
	defer os.Chmod(locked, 0o755)
	if got := ListFiles(work, "locked"); got == nil || len(got) != 0 {
		t.Fatalf("got %#v, want an empty list", got)
	}
}

func TestPythonLower(t *testing.T) {
	for in, want := range map[string][]rune{
		"ABC": []rune("abc"), "İ": {'i', 0x307}, "ÄÖÜ": []rune("äöü"), "Σ": []rune("σ"),
		"a\xffB": {'a', 0xdcff, 'b'}, // surrogateescape, as os.listdir decodes it
	} {
		if got := pythonLower(in); !slices.Equal(got, want) {
			t.Errorf("pythonLower(%q) = %U, want %U", in, got, want)
		}
	}
}

// TestListFilesMatchesPython lists a directory of awkward names with
// CPython's os.listdir, os.path.exists, os.path.isdir and
// sort(key=str.lower), when python3 is installed, and compares.
func TestListFilesMatchesPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	work := t.TempDir()
	for _, d := range []string{"ab", "ab-c", "AB.d", "ǅ", "ǆx", "ß", "SS", "İ", "i", "Ω", "ꭰ", ".x", "x.", "x-"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(work, d+"f"), "", 0o644)
		writeFile(t, filepath.Join(work, strings.ToUpper(d)+"F"), "", 0o644)
	}
	os.Symlink("ab", filepath.Join(work, "AL"))
	os.Symlink("abf", filepath.Join(work, "al"))
	os.Symlink("none", filepath.Join(work, "dangling"))
	const script = `
import json, os, sys
d = sys.argv[1]
dirs, files = [], []
for name in os.listdir(d):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        continue
    (dirs if os.path.isdir(p) else files).append(name + "/" if os.path.isdir(p) else name)
dirs.sort(key=lambda s: s.lower())
files.sort(key=lambda s: s.lower())
print(json.dumps(dirs + files))
`
	out, err := exec.Command(python, "-c", script, work).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	// Names whose lower-cased forms are equal keep the file system's order
	// in Python (a stable sort) and are ordered by bytes here, so compare
	// the sets and the sequence of sort keys.
	got := ListFiles(work, "")
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("different entries:\ngot  %q\nwant %q", got, want)
	}
	for i := range got {
		if !slices.Equal(pythonLower(got[i]), pythonLower(want[i])) {
			t.Fatalf("order differs at %d:\ngot  %q\nwant %q", i, got, want)
		}
	}
}
