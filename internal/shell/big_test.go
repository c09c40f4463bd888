package shell

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBigCommands(t *testing.T) {
	t.Parallel()
	sh := newTestShell(t, 5*time.Second)
	long := strings.Repeat("x", 100000)
	res := run(t, sh, Request{Command: "echo " + long + " | wc -c", Timeout: 30})
	if res.Content != "100001" {
		t.Fatalf("100 KB line: got %q", res.Content)
	}
	var b strings.Builder
	b.WriteString("cat > big.txt <<'EOF'\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "line %d\twith a tab and $dollar and `ticks`\n", i)
	}
	b.WriteString("EOF")
	t0 := time.Now()
	res = run(t, sh, Request{Command: b.String(), Timeout: 60})
	if res.Metadata.ExitCode != 0 {
		t.Fatalf("heredoc: %+v", res)
	}
	t.Logf("5000-line heredoc typed in %s", time.Since(t0))
	res = run(t, sh, Request{Command: "wc -l < big.txt; sed -n 4999p big.txt | od -c | head -2"})
	if !strings.HasPrefix(res.Content, "5000\n") || !strings.Contains(res.Content, `\t`) {
		t.Fatalf("heredoc content: %q", res.Content)
	}
}
