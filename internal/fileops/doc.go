// Package fileops owns the file side of sandboxd's action protocol: the
// server-side semantics of OpenHands' read, write and edit actions,
// including the whole OHEditor of openhands-aci 0.3.2 (view, create,
// str_replace, insert, undo_edit), with every observation text reproduced
// to the character (docs: shared/spec/openhands-runtime.md §3.4, §4.1–§4.3
// and §6).
//
// It knows nothing about HTTP or JSON wire types. The HTTP layer decodes an
// action, calls [Files.Read], [Files.Write] or [Files.Edit] and builds the
// observation from the result:
//
//   - Result.Err != nil: OpenHands would have failed the request (HTTP 500,
//     detail "Internal server error: " + the text, which is Python's
//     exception text where OpenHands has one); the error is classified with
//     errdefs.
//   - ReadResult/WriteResult.ErrorText != "": an ErrorObservation.
//   - otherwise a read, write or edit observation. EditResult already holds
//     every extra the way OpenHands fills it: content is the editor output
//     or "ERROR:\n<message>", path is the request's path as sent,
//     old_content/new_content echo old_str/new_str, prev_exist is false,
//     and diff is the whole-file unified diff (never null).
//
// The caller applies the wire defaults (start 0, end -1) and passes the
// shell's current directory for relative paths. The edit action never
// carries a view_range to the editor (spec §4.3), so EditRequest has none;
// a ranged view comes through Read with ImplSource "oh_aci". view_range and insert_line
// are passed as decoded from JSON; json.RawMessage is the exact form (it
// keeps 5 and 5.0 apart and object keys in order, both visible in the
// editor's messages).
//
// # What is reproduced
//
// Paths are normalised like pathlib and printed like Python (repr in OSError
// texts, str() of lists and floats). Files are decoded with Python's
// universal newlines ("\r\n" and "\r" read as "\n"), so an edit rewrites a
// CRLF file with LF, as OpenHands does. str_replace searches
// non-overlapping occurrences, retries with stripped strings, reports
// distinct start lines; insert keeps the glued-line quirk and carries a
// float insert_line into the snippet numbering; view_range follows Python's
// type rules (bools are ints, "It should be a list of two integers." for
// anything else, TypeError texts for values without len()); the snippet
// windows, the 16 000-character clip with its three notices and the
// "%6d\t" numbering are those of the editor. The diff is difflib's
// unified_diff with n=0, line for line (SequenceMatcher's longest-match
// recursion, tie-breaking and autojunk are reimplemented). The directory
// view reproduces find -L ... -maxdepth 2 | sort in the runtime image's
// C.UTF-8 locale, including the hidden-entry filter's glob semantics and
// find's diagnostics (symbolic-link loops, unreadable directories), which
// turn the view into an error. The binary check is binaryornot 0.4.4's
// heuristic. Undo keeps 10 levels per file, on disk in a private directory
// (Options.TempDir), with only entry names in memory.
//
// # Where sbx deliberately differs
//
//   - Every write (write action and editor) goes to a temporary file in the
//     same directory, which is fsynced and renamed over the target, so no
//     reader ever sees a partial file; symbolic links are written through.
//     A failed encode or write leaves the file untouched (Python truncates
//     first). Hard links to the file are not updated, and writing needs
//     permission to create a file in the directory, not only to write the
//     file.
//   - Existing files keep mode and owner (the editor's insert in OpenHands
//     leaves them 0600 and root-owned); new files, including the editor's,
//     get mode 0664 and Options.UID:GID; directories the write action
//     creates are given to the sandbox user as well.
//   - Encoding detection: charset_normalizer is approximated (BOMs; valid
//     UTF-8, pure ASCII included, is UTF-8; otherwise cp1251 or KOI8-R when
//     the bytes look Cyrillic, else Windows-1252, whose undefined bytes map
//     to the same code points so every byte round-trips). charset_normalizer
//     sometimes decodes short valid UTF-8 files as a CJK code page and shows
//     mojibake, or declines, after which OpenHands fails with a
//     UnicodeDecodeError; sbx does neither. A file that stops being valid
//     UTF-8 after the first MiB gives "Ran into 'utf-8' codec can't decode
//     ..." everywhere (OpenHands raises HTTP 500 in view and insert).
//     Positions in such messages count from the start of the file, not of
//     Python's 8 KiB decode chunk. UTF-16/32 files keep their byte order
//     (Python writes little-endian). The encoding is detected again for
//     every command instead of being cached per path and mtime.
//   - The binary check's use of chardet is approximated: byte-order marks,
//     UTF-8 with at least four multi-byte characters (and complete within
//     the 1 KiB sample), and the Cyrillic heuristic count as confidently
//     decodable; chardet's other language models are not reproduced.
//   - FIFOs, sockets and devices are refused (OpenHands would block on or
//     read them): the editor reports a file-validation error, the read and
//     write actions an error result.
//   - The directory view runs no shell: paths with spaces, quotes or glob
//     characters are listed as the literal directory (OpenHands' unquoted
//     command splits or expands them), and find's diagnostics come in name
//     order.
//   - Supported binaries: .docx, .xlsx and .pptx are converted from their
//     XML to Markdown in OpenHands' layout, approximating mammoth, pandas and
//     python-pptx; .pdf and audio (.mp3 .wav .m4a .flac) are not converted
//     and view answers "Error in converting file to Markdown: ...".
//   - The default read action refuses files above Options.MaxReadBytes
//     ("File is too large (...) to read: ...", an ErrorObservation).
//   - A failed undo write keeps the history entry; an editor I/O error is
//     always "Ran into <error> while trying to ...", where OpenHands
//     sometimes lets it escape as HTTP 500.
//
// One deliberate choice follows the spec against the code: the default read
// action's line window uses the rule as §4.1 states it, where an end past
// the last line drops the last line; OpenHands' read_lines clamps end first
// and returns through the end of the file (see readWindow).
package fileops
