package owner

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestSelfIsAlive(t *testing.T) {
	s := Self()
	if strings.Count(s, "/") != 3 || !Alive(s) {
		t.Fatalf("Self() = %q, Alive = %v", s, Alive(s))
	}
}

func TestExitedProcessIsNotAlive(t *testing.T) {
	cmd := exec.Command("sleep", "0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ticks := startTicks(pid)
	cmd.Wait()
	if ticks == 0 {
		t.Skip("process ended before its start time could be read")
	}
	h, _ := os.Hostname()
	o := fmt.Sprintf("%s/%s/%d/%d", h, pidNS(), pid, ticks)
	if Alive(o) {
		t.Fatalf("%s counted alive after it exited", o)
	}
	// The same pid with another start time is another process.
	self := os.Getpid()
	if Alive(fmt.Sprintf("%s/%s/%d/%d", h, pidNS(), self, startTicks(self)+1)) {
		t.Fatal("a reused pid counted as the owner")
	}
}

func TestUncheckableCountsAsAlive(t *testing.T) {
	h, _ := os.Hostname()
	for _, o := range []string{
		"other-host/" + pidNS() + "/1/1",
		h + "/pid_4026531999/999999999/1", // another pid namespace
		h + "/999999999/1",                // an old or malformed label
		"",
		h + "/" + pidNS() + "/x/1",
	} {
		if !Alive(o) {
			t.Errorf("Alive(%q) = false; gc could remove what it cannot check", o)
		}
	}
}
