package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/moby/moby/client"
)

// Static makes image tag FROM scratch holding one static binary at
// /<name> as its entrypoint and an empty /state directory, unless tag is
// there already; it returns the image's ID. This is how sbx ships its own
// helper programs (the egress proxy) without a registry or a base image:
// the tag carries the binary's digest, so a present tag is the right
// image.
func Static(ctx context.Context, api API, binPath, name, tag string, labels map[string]string) (string, error) {
	if res, ok, err := inspect(ctx, api, tag); err != nil {
		return "", err
	} else if ok {
		return res.ID, nil
	}
	f, err := os.Open(binPath)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: "state/", Mode: 0o700, Typeflag: tar.TypeDir, ModTime: st.ModTime()})
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	changes := []string{fmt.Sprintf(`ENTRYPOINT ["/%s"]`, name)}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		changes = append(changes, fmt.Sprintf("LABEL %s=%q", k, labels[k]))
	}
	resp, err := api.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, tag, client.ImageImportOptions{Changes: changes, Message: "sbx " + name})
	if err != nil {
		pr.CloseWithError(err)
		return "", engineError(err, "importing "+tag)
	}
	defer resp.Close()
	id, err := readImportStream(resp)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", fmt.Errorf("importing %s: %w", tag, err)
	}
	return strings.TrimSpace(id), nil
}
