package staging

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestSweepRemovesOnlyRecordedStagingFiles(t *testing.T) {
	state, work := t.TempDir(), t.TempDir()
	j, err := Open(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(state, nil); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("second Open of a held journal: %v, want ErrUnavailable", err)
	}
	leftFile := filepath.Join(work, Name(".sbx-write-"))
	leftDir := filepath.Join(work, Name(".sbx-upload-"))
	finished := filepath.Join(work, Name(".sbx-write-"))
	for _, p := range []string{leftFile, leftDir, finished} {
		if _, err := j.Record(p); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(leftFile, []byte("half"), 0o600)
	os.MkdirAll(filepath.Join(leftDir, "tree"), 0o700)
	done, err := j.Record(filepath.Join(work, Name(".sbx-write-")))
	if err != nil {
		t.Fatal(err)
	}
	done()
	// A user's file of a staging-like name nobody recorded, and a record
	// whose target became a user's symlink: both stay.
	mine := filepath.Join(work, ".sbx-write-mine")
	os.WriteFile(mine, nil, 0o600)
	if _, err := j.Record(mine); err == nil {
		t.Errorf("Record accepted a name that is not a staging name")
	}
	os.WriteFile(filepath.Join(state, "bogus.rec"), []byte("/etc/passwd\n"), 0o600)
	j.Close()

	j2, err := Open(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if n := j2.Sweep(); n != 2 {
		t.Errorf("Sweep removed %d, want 2", n)
	}
	for _, p := range []string{leftFile, leftDir} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the sweep: %v", p, err)
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the user's file went: %v", err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		if e.Name() != lockFile {
			t.Errorf("record left after the sweep: %s", e.Name())
		}
	}
}

func TestNilJournal(t *testing.T) {
	var j *Journal
	done, err := j.Record("/x/" + Name(".sbx-write-"))
	if err != nil {
		t.Fatal(err)
	}
	done()
	if j.Sweep() != 0 || j.Close() != nil {
		t.Error("a nil journal did something")
	}
}
