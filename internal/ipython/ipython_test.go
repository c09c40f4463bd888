package ipython

import (
	"os"
	"strings"
	"testing"

	"github.com/sbx-dev/sbx/internal/reaper"
)

var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	testReaper = reaper.New(nil)
	code := m.Run()
	testReaper.Close()
	os.Exit(code)
}

func newKernel(t *testing.T) *Kernel {
	t.Helper()
	k := New(Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir()}, Dir: t.TempDir(), Starter: testReaper})
	if _, err := k.python(); err != nil {
		t.Skip("no python here")
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestCells(t *testing.T) {
	k := newKernel(t)
	ctx := t.Context()
	dir := t.TempDir()
	cases := []struct{ code, want string }{
		{"print(1)", "1\n"},
		{"x = 41", "[Code executed successfully with no output]"},
		{"x + 1", "42"},
		{"print('a'); 'b'", "a\n'b'"},
		{"import os; os.getcwd()", "'" + dir + "'"},
		{"!echo from-shell", "from-shell\n"},
		{"%cd /", "/\n"},
		{"%%bash\necho one\necho two", "one\ntwo\n"},
		{"%nosuchmagic", "UsageError: Line magic function `%nosuchmagic` not found."},
		{"input()", ""},
	}
	for _, c := range cases {
		res, err := k.Run(ctx, c.code, dir, 30)
		if err != nil {
			t.Fatalf("%q: %v", c.code, err)
		}
		if c.code == "input()" {
			if !strings.Contains(res.Text, "EOFError") {
				t.Errorf("input() should fail without stdin: %q", res.Text)
			}
			continue
		}
		if res.Text != c.want {
			t.Errorf("%q: got %q, want %q", c.code, res.Text, c.want)
		}
		if c.code == "%cd /" {
			dir = "/" // the next cell's cwd is unchanged, so no chdir is sent
		}
	}
}

func TestErrorsAndTimeout(t *testing.T) {
	k := newKernel(t)
	ctx := t.Context()
	res, err := k.Run(ctx, "1/0", "/", 30)
	if err != nil || !strings.Contains(res.Text, "ZeroDivisionError") || !strings.Contains(res.Text, "Cell In[1], line 1") || !strings.Contains(res.Text, "----> 1 1/0") {
		t.Fatalf("%v %q", err, res.Text)
	}
	res, err = k.Run(ctx, "def f(:\n  pass", "/", 30)
	if err != nil || !strings.Contains(res.Text, "SyntaxError") {
		t.Fatalf("%v %q", err, res.Text)
	}
	res, err = k.Run(ctx, "import time; time.sleep(30)", "/", 0.5)
	if err != nil || !res.TimedOut || res.Text != "[Execution timed out (0.5 seconds).]" {
		t.Fatalf("%v %+v", err, res)
	}
	res, err = k.Run(ctx, "x = 5; x * 2", "/", 30)
	if err != nil || res.Text != "10" {
		t.Fatalf("after a timeout: %v %q", err, res.Text)
	}
	res, err = k.Run(ctx, "import os; os._exit(3)", "/", 5)
	if err == nil {
		t.Fatalf("a dead kernel should be an error: %+v", res)
	}
	res, err = k.Run(ctx, "1+1", "/", 30)
	if err != nil || res.Text != "2" {
		t.Fatalf("a new kernel after exit: %v %q", err, res.Text)
	}
}
