package fileops

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// historyDepth is how many undo levels the editor keeps per file.
const historyDepth = 10

// history is the editor's undo stack. The texts live in files under a
// private directory (0700, removed by Close); memory holds only, per path,
// the names of at most historyDepth entry files. The caller serialises
// access (Files.mu).
type history struct {
	dir     string
	next    uint64
	entries map[string][]string // path → entry file names, oldest first
}

func newHistory(parent string) (*history, error) {
	dir, err := os.MkdirTemp(parent, "sbx-editor-history-")
	if err != nil {
		return nil, fmt.Errorf("create undo history directory: %w", err)
	}
	return &history{dir: dir, entries: make(map[string][]string)}, nil
}

// push records text as the newest entry for path, dropping the oldest one
// beyond historyDepth.
func (h *history) push(path, text string) error {
	name := strconv.FormatUint(h.next, 10)
	h.next++
	if err := writeEntry(filepath.Join(h.dir, name), text); err != nil {
		return fmt.Errorf("save undo entry for %s: %w", path, err)
	}
	list := append(h.entries[path], name)
	for len(list) > historyDepth {
		os.Remove(filepath.Join(h.dir, list[0]))
		list = list[1:]
	}
	// Re-slicing keeps the dropped names reachable; copy when it matters.
	if cap(list) > 2*historyDepth {
		list = append([]string(nil), list...)
	}
	h.entries[path] = list
	return nil
}

// writeEntry writes text without first copying it into a []byte, which
// for a 10 MB file would double the memory an edit needs.
func writeEntry(file, text string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pop removes and returns the newest entry for path; ok is false when
// there is none.
func (h *history) pop(path string) (text string, ok bool, err error) {
	list := h.entries[path]
	if len(list) == 0 {
		return "", false, nil
	}
	name := list[len(list)-1]
	if len(list) == 1 {
		delete(h.entries, path)
	} else {
		h.entries[path] = list[:len(list)-1]
	}
	file := filepath.Join(h.dir, name)
	data, err := os.ReadFile(file)
	if err != nil {
		return "", false, fmt.Errorf("read undo entry for %s: %w", path, err)
	}
	os.Remove(file)
	return string(data), true, nil
}

func (h *history) close() error {
	h.entries = nil
	return os.RemoveAll(h.dir)
}
