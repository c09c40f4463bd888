package procs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Stream names the pipe a chunk of output came from.
type Stream uint8

// The two captured streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return fmt.Sprintf("stream%d", uint8(s))
}

// Chunk is output of one stream starting at an absolute offset, counted
// in bytes of output since the process started (record headers excluded).
type Chunk struct {
	Stream Stream
	Offset int64
	Data   []byte
}

// On disk a log is a sequence of records: one byte of stream, four bytes
// of length (little endian), the data. One record is one read from a pipe,
// so the file keeps the order in which the two pipes were read.
const recHeader = 5

// indexEvery is the spacing, in file bytes, of the in-memory index that
// lets a reader find an offset without scanning a whole segment: 64 KiB
// means at most 64 KiB of headers to skip, and about 1000 entries for a
// 64 MiB log.
const indexEvery = 64 << 10

type indexEntry struct{ pos, off int64 }

// segment is one file of a log. A log has at most two, the current one
// and the previous one; rotation deletes the older.
type segment struct {
	path  string
	f     *os.File // read and written with pread/pwrite, never seeked
	start int64    // output offset of its first data byte
	size  int64    // committed file bytes
	index []indexEntry
	next  int64 // file position at which the next index entry is due
	refs  int   // readers holding f
	dead  bool  // rotated away or removed: close f when refs drops to 0
}

// outLog is the bounded on-disk output of one process. Appends come from
// the pipe readers and never wait for a reader: readers take mu only to
// look at the segments and pin one, then read the file at their own pace.
type outLog struct {
	dir, name string
	segMax    int64

	wmu  sync.Mutex // serialises appends (two pipe readers)
	wbuf []byte     // header+data, so that a record is one pwrite

	mu      sync.Mutex
	segs    []*segment // oldest first
	seq     int        // names segment files
	end     int64      // output bytes written
	changed chan struct{}
	removed bool
}

func newOutLog(dir, name string, maxBytes int64) (*outLog, error) {
	l := &outLog{dir: dir, name: name, segMax: maxBytes / 2, changed: make(chan struct{})}
	s, err := l.newSegment(0)
	if err != nil {
		return nil, err
	}
	l.segs = []*segment{s}
	return l, nil
}

func (l *outLog) newSegment(start int64) (*segment, error) {
	l.seq++
	p := filepath.Join(l.dir, fmt.Sprintf("%s.%d.log", l.name, l.seq))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("output log: %w", err)
	}
	return &segment{path: p, f: f, start: start, index: []indexEntry{{0, start}}, next: indexEvery}, nil
}

// append writes p as records of stream s, rotating as needed.
func (l *outLog) append(s Stream, p []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for len(p) > 0 {
		n := min(int64(len(p)), l.segMax-recHeader)
		if err := l.appendRecord(s, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (l *outLog) appendRecord(s Stream, p []byte) error {
	l.mu.Lock()
	if l.removed {
		l.mu.Unlock()
		return errdefs.New(errdefs.ErrNotFound, "output log removed")
	}
	cur := l.segs[len(l.segs)-1]
	end := l.end
	l.mu.Unlock()
	rec := int64(recHeader + len(p))
	if cur.size > 0 && cur.size+rec > l.segMax {
		// Creating the file happens outside mu: readers are not held up.
		ns, err := l.newSegment(end)
		if err != nil {
			return err
		}
		l.mu.Lock()
		if len(l.segs) == 2 {
			old := l.segs[0]
			l.segs = l.segs[1:]
			old.kill()
		}
		l.segs = append(l.segs, ns)
		l.mu.Unlock()
		cur = ns
	}
	l.wbuf = append(l.wbuf[:0], byte(s), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(l.wbuf[1:recHeader], uint32(len(p)))
	l.wbuf = append(l.wbuf, p...)
	pos := cur.size // only the writer, under wmu, changes size
	if _, err := cur.f.WriteAt(l.wbuf, pos); err != nil {
		l.mu.Lock()
		removed := l.removed
		l.mu.Unlock()
		if removed {
			// Forgotten while a child of the process still writes.
			return errdefs.New(errdefs.ErrNotFound, "output log removed")
		}
		return fmt.Errorf("output log: %w", err)
	}
	l.mu.Lock()
	cur.size += rec
	if pos >= cur.next {
		cur.index = append(cur.index, indexEntry{pos, end})
		cur.next = pos + indexEvery
	}
	l.end += int64(len(p))
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	return nil
}

// kill unlinks a segment; its file stays readable to readers holding it.
// Called with l.mu held.
func (s *segment) kill() {
	s.dead = true
	_ = os.Remove(s.path)
	if s.refs == 0 {
		_ = s.f.Close()
	}
}

func (l *outLog) release(s *segment) {
	l.mu.Lock()
	s.refs--
	if s.dead && s.refs == 0 {
		_ = s.f.Close()
	}
	l.mu.Unlock()
}

// remove deletes the log's files; readers already holding a segment
// finish reading it.
func (l *outLog) remove() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return
	}
	l.removed = true
	for _, s := range l.segs {
		s.kill()
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// readResult is what one read found, and the channel that is closed when
// the log changes after that read looked at it (so a follower never misses
// a wake-up between reading and waiting).
type readResult struct {
	chunks  []Chunk
	next    int64
	lost    int64
	end     int64
	changed <-chan struct{}
}

// read returns up to max bytes of output from offset. An offset older
// than what the log keeps is moved to the oldest byte kept and the bytes
// skipped are reported as lost.
func (l *outLog) read(offset int64, max int) (readResult, error) {
	if offset < 0 {
		return readResult{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("offset %d is negative", offset))
	}
	var res readResult
	first := true
	for max > 0 {
		l.mu.Lock()
		if first {
			res.changed = l.changed
			res.end = l.end
			if offset > l.end {
				end := l.end
				l.mu.Unlock()
				return readResult{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("offset %d is beyond the end of the output (%d bytes)", offset, end))
			}
			if l.removed {
				// Its files are gone: nothing is lost that was not
				// already told, nothing more can be read.
				l.mu.Unlock()
				res.next = offset
				return res, nil
			}
			if old := l.segs[0].start; offset < old {
				res.lost = old - offset
				offset = old
			}
			first = false
		}
		if offset >= res.end || l.removed {
			l.mu.Unlock()
			break
		}
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].start > offset }) - 1
		if i < 0 {
			// Rotated away since the first look: the caller asks again
			// and learns about it as lost bytes.
			l.mu.Unlock()
			break
		}
		s := l.segs[i]
		j := sort.Search(len(s.index), func(j int) bool { return s.index[j].off > offset }) - 1
		e := s.index[j]
		limit := s.size
		s.refs++
		l.mu.Unlock()
		got, n, err := readSegment(s.f, e, limit, offset, max, res.chunks)
		l.release(s)
		if err != nil {
			return readResult{}, err
		}
		res.chunks = got
		if n == 0 {
			break
		}
		offset += int64(n)
		max -= n
	}
	res.next = offset
	return res, nil
}

// readSegment reads records from file position e.pos (output offset
// e.off) up to limit, appending the data from offset on to chunks.
func readSegment(f *os.File, e indexEntry, limit, offset int64, max int, chunks []Chunk) ([]Chunk, int, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, e.pos, limit-e.pos), 32<<10)
	var hdr [recHeader]byte
	d := e.off
	total := 0
	for max > 0 {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return chunks, total, fmt.Errorf("output log: %w", err)
		}
		st, n := Stream(hdr[0]), int64(binary.LittleEndian.Uint32(hdr[1:]))
		if d+n <= offset {
			if _, err := br.Discard(int(n)); err != nil {
				return chunks, total, fmt.Errorf("output log: %w", err)
			}
			d += n
			continue
		}
		skip := offset - d
		if _, err := br.Discard(int(skip)); err != nil {
			return chunks, total, fmt.Errorf("output log: %w", err)
		}
		want := n - skip
		cut := want > int64(max)
		if cut {
			want = int64(max)
		}
		data := make([]byte, want)
		if _, err := io.ReadFull(br, data); err != nil {
			return chunks, total, fmt.Errorf("output log: %w", err)
		}
		if cut {
			// Past the first byte the rune can wait for the next read.
			data = backToRune(data, br, total == 0 && len(chunks) == 0)
			if len(data) == 0 {
				break
			}
		}
		if k := len(chunks) - 1; k >= 0 && chunks[k].Stream == st && chunks[k].Offset+int64(len(chunks[k].Data)) == offset {
			chunks[k].Data = append(chunks[k].Data, data...)
		} else {
			chunks = append(chunks, Chunk{Stream: st, Offset: offset, Data: data})
		}
		offset += int64(len(data))
		max -= len(data)
		total += len(data)
		d = offset
		if cut {
			break
		}
	}
	return chunks, total, nil
}

// backToRune shortens data, cut at max bytes in the middle of a record,
// so that it does not end inside a UTF-8 sequence the rest of the record
// completes; if that would leave nothing, it reads the sequence's end
// when extend is set and returns nothing otherwise.
func backToRune(data []byte, br *bufio.Reader, extend bool) []byte {
	nb, err := br.Peek(1)
	if err != nil || !isCont(nb[0]) {
		return data
	}
	for i := len(data) - 1; i >= 0 && i >= len(data)-3; i-- {
		if !isCont(data[i]) {
			if i > 0 {
				return data[:i]
			}
			break
		}
	}
	if !extend {
		return nil
	}
	for k := 0; k < 3; k++ {
		nb, err := br.Peek(1)
		if err != nil || !isCont(nb[0]) {
			break
		}
		data = append(data, nb[0])
		_, _ = br.Discard(1)
	}
	return data
}

func isCont(b byte) bool { return b&0xC0 == 0x80 }

// completePrefix is the length of the longest prefix of b that does not
// end with the beginning of a valid UTF-8 sequence whose remaining bytes
// are still to come. Invalid bytes count as complete: binary output is
// never held back for more than the bytes of one would-be rune.
func completePrefix(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if !isCont(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
