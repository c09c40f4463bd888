package procstat

import (
	"errors"
	"os"
	"testing"
)

func TestReadSelf(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.PPID != os.Getppid() || st.Start == 0 || st.State == 0 {
		t.Fatalf("%+v", st)
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(1 << 30); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("err = %v", err)
	}
}

func TestParse(t *testing.T) {
	st, err := Parse(7, []byte("7 (x) y) z) T 3 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5555 0 0"))
	if err != nil || st.State != 'T' || st.PPID != 3 || st.Start != 5555 {
		t.Fatalf("%+v %v", st, err)
	}
}
