package shell

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/term"
)

// The texts below are part of the wire contract: agents built for OpenHands
// read them word for word (spec §5.4–§5.6).
const (
	timeoutMessageTemplate = `You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.`

	continuePrefix = "[Below is the output of the previous command.]\n"

	errNoPreviousLogs  = "ERROR: No previous running command to retrieve logs from."
	errNoPreviousInput = "ERROR: No previous running command to interact with."

	truncatedNotice = "\n[... Observation truncated due to length ...]\n"

	// maxContent is where a run observation's content is middle-truncated.
	maxContent = 30000
)

func completedSuffix(exitCode int) string {
	return fmt.Sprintf("\n[The command completed with exit code %d.]", exitCode)
}

func completedKeySuffix(exitCode int, key byte) string {
	return fmt.Sprintf("\n[The command completed with exit code %d. CTRL+%c was sent.]", exitCode, unicode.ToUpper(rune(key)))
}

func noChangeSuffix(seconds int) string {
	return fmt.Sprintf("\n[The command has no new output after %d seconds. %s]", seconds, timeoutMessageTemplate)
}

func hardTimeoutSuffix(timeout float64) string {
	return fmt.Sprintf("\n[The command timed out after %s seconds. %s]", pyFloat(timeout), timeoutMessageTemplate)
}

func notExecutedSuffix(command string) string {
	return fmt.Sprintf("\n[Your command \"%s\" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting `is_input` to `true`, you can interact with the current process: %s]", command, timeoutMessageTemplate)
}

func historyTruncatedPrefix(lines int) string {
	return fmt.Sprintf("[Previous command outputs are truncated. Showing the last %d lines of the output below.]\n", lines)
}

func multipleCommandsError(cmds []string) string {
	var b strings.Builder
	b.WriteString("ERROR: Cannot execute multiple commands at once.\n")
	b.WriteString("Please run each command separately OR chain them into a single command via && or ;\n")
	b.WriteString("Provided commands:")
	for i, c := range cmds {
		fmt.Fprintf(&b, "\n(%d) %s", i+1, c)
	}
	return b.String()
}

// pyFloat formats f as Python's repr(float) does: "1.0", "2.5", "120.0",
// "1e-05".
func pyFloat(f float64) string {
	abs := f
	if abs < 0 {
		abs = -abs
	}
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		// Go and Python agree here: "1e-05", "1e+16".
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// isPySpace is Python's str.isspace, the rule of every strip in a reply.
func isPySpace(r rune) bool { return term.IsSpace(r) }

func pyStrip(s string) string  { return strings.TrimFunc(s, isPySpace) }
func pyLstrip(s string) string { return strings.TrimLeftFunc(s, isPySpace) }
func pyRstrip(s string) string { return strings.TrimRightFunc(s, isPySpace) }

// pySplitlinesCount counts lines as len(s.splitlines()) does for the line
// breaks a terminal capture can contain.
func pySplitlinesCount(s string) int {
	if s == "" {
		return 0
	}
	n := strings.Count(s, "\n")
	if !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// truncateMiddle keeps the first and last half of an over-long content.
// Python counts code points, not bytes; they are counted in place, since
// a []rune of a 10 MB capture would cost four times its size.
func truncateMiddle(s string) string {
	if len(s) <= maxContent {
		return s
	}
	n := utf8.RuneCountInString(s)
	if n <= maxContent {
		return s
	}
	half := maxContent / 2
	head, tail := runeOffset(s, half), runeOffset(s, n-half)
	return s[:head] + truncatedNotice + s[tail:]
}

// runeOffset is the byte offset of s's k-th code point.
func runeOffset(s string, k int) int {
	for i := range s {
		if k == 0 {
			return i
		}
		k--
	}
	return len(s)
}
