// Package transfer owns the file-system side of sandboxd's bulk file
// routes: storing an upload (/upload_file), streaming a directory as a zip
// (/download_files) and listing a directory for the UI (/list_files), with
// the observable behaviour of OpenHands' action execution server
// (docs: shared/spec/openhands-runtime.md §2.4 and §5.10).
//
// It knows nothing about HTTP: callers hand it io.Readers and io.Writers and
// map the returned errdefs classes to status codes. Errors whose text is part
// of the wire contract are exactly "Destination must be an absolute path",
// "Recursive uploads must be zip files", "Path must be an absolute path"
// (all ErrInvalidArgument; the first two also match [ErrDestinationNotAbsolute]
// and [ErrRecursiveNotZip], which callers test instead of the text) and
// "File not found" (ErrNotFound); every other message is sbx's own.
//
// # Upload
//
// [Upload] creates the destination directory (mkdir -p), then either stores
// the body as <dest>/<filename>, or, when recursive is set or the file name
// ends in ".zip" (case-sensitive, as in OpenHands), unpacks it as a zip
// archive into dest. All arguments are checked before anything is created.
// The file name must be a plain base name; anything containing "/" or NUL,
// ".", ".." and "" are refused rather than joined onto dest.
//
// A single file is written to a hidden temporary file in dest and renamed
// over the target, so readers see the old content or the whole new content,
// never a prefix, and a failed or cancelled upload leaves no file behind. An
// existing regular file keeps its permission bits and owner (the owner on a
// best-effort basis: it needs privilege); an existing symbolic link is
// replaced, never written through; an existing directory is a conflict. The
// file is not fsynced: the rename gives atomic visibility, which is what
// concurrent readers in the sandbox need, and a sandbox does not outlive a
// host crash in a useful state, while an fsync would cap uploads at the disk's
// write-back speed.
//
// An archive is streamed to a spool file inside a hidden staging directory in
// dest (never held in memory), checked, extracted into the staging directory
// and only then moved into place:
//
//   - Names must stay inside dest: absolute names, ".." components, NUL bytes
//     and empty names are refused. Symbolic-link entries, device, FIFO and
//     socket entries, encrypted entries and compression methods other than
//     Store and Deflate refuse the whole archive.
//   - The archive may hold at most Options.MaxEntries entries and expand to at
//     most Options.MaxBytes bytes. Declared sizes are summed before anything is
//     written and the bytes actually written are counted again while
//     extracting. The central directory is bounded while it is parsed (by
//     entry count, and by 1 MiB plus 512 bytes per allowed entry), so a crafted
//     archive cannot make the parser allocate without limit either.
//   - Files and directories keep the permission bits of the archive
//     (setuid, setgid and sticky bits dropped); entries without Unix modes get
//     0644 and 0755. Existing directories in dest keep their mode and owner.
//     With Options.Owner set, every file and directory the upload creates is
//     given that owner (including directories made for dest itself).
//     Modification times are not restored (OpenHands does not either), and
//     names are used as the archive's raw bytes, UTF-8 or not.
//   - Every write goes through an os.Root, so no name or symbolic link can
//     reach outside the staging directory or dest. Before anything is moved,
//     the whole extracted tree is compared with dest: a symbolic link in dest
//     where the archive needs a directory, or a file where it needs a
//     directory (and the reverse), refuses the archive (ErrConflict) instead of
//     writing through the link. Existing files and symbolic links at a file's
//     name are replaced.
//
// Guarantee: an archive that is refused, for any of the reasons above or a
// read error or cancellation, leaves dest exactly as it was (apart from dest
// being created). After validation, new subtrees are moved into dest with one
// rename each and files replace their old versions atomically; only an I/O
// error or a concurrent change to dest during that short move phase, which is
// not interrupted by cancellation, can leave part of an archive moved. The
// staging directory (".sbx-upload-*") is removed in every case except a crash.
//
// # Download
//
// [Download] writes a zip of an absolute path to a writer without a temporary
// file. Nothing is written before the path has been validated, so a caller
// that commits the response on the first Write can still report those errors.
// An error after that leaves w with a truncated archive; the caller can only
// abort the response. Entry names are relative to path; entries carry the
// files' modes and modification times. As in OpenHands (which zips the files
// of an os.walk), only files get entries: directories, including empty ones,
// do not. A plain file gives a zip holding that one file under its base name
// (a deliberate difference: OpenHands sends an empty zip). A path that is
// neither gives an empty zip.
//
// Symbolic links below path: links to directories are never descended (as
// os.walk); a link to a regular file is stored as a regular file with the
// target's content, under the link's name, only if the fully resolved target
// lies inside the tree; links leading out of the tree (which OpenHands would
// follow), dangling links (on which it fails), FIFOs, sockets and devices are
// skipped. All reads go through an os.Root, so not
// even a concurrent swap makes Download read outside path. Unreadable
// directories are skipped (as os.walk does); an unreadable file aborts the
// stream with an error.
//
// Entries are stored, not deflated, as OpenHands' ZipFile does by default:
// downloads mostly cross loopback, where deflating (about 130 MB/s of
// source code on one core) would be the bottleneck.
//
// # List
//
// [ListFiles] implements /list_files exactly; see its doc comment.
package transfer
