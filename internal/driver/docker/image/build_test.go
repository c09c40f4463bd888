package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

// fakeSandboxd is the "binary" the build tests bake in. Its content is
// fixed so the engine's build cache shares the COPY layer between runs
// instead of leaving a new one behind each time.
const fakeSandboxd = "#!/bin/sh\n# fake sandboxd for sbx internal/image tests\nexit 0\n"

func writeFakeSandboxd(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "sandboxd")
	if err := os.WriteFile(p, []byte(fakeSandboxd), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerfile(t *testing.T) {
	got := dockerfile("sha256:abc", "apt-get install -y ruby &&\n echo \"done\" $HOME", map[string]string{
		"b.version": `v1 "x" $HOME\`,
		"a.kind":    "runtime",
	})
	want := `FROM sha256:abc
ENTRYPOINT []
CMD ["/opt/sbx/sandboxd","8000","--working-dir","/workspace"]
COPY links/ /usr/local/bin/
COPY sandboxd /opt/sbx/sandboxd
RUN ["/bin/sh","-c","apt-get install -y ruby &&\n echo \"done\" $HOME"]
LABEL a.kind="runtime" b.version="v1 \"x\" \$HOME\\"
`
	if got != want {
		t.Errorf("dockerfile:\n%s\nwant:\n%s", got, want)
	}
	// The builder echoes instructions into the build log as written: no
	// JSON escapes of > < & there.
	if got := dockerfile("sha256:abc", "echo <a> > /dev/null 2>&1", nil); !strings.Contains(got, `RUN ["/bin/sh","-c","echo <a> > /dev/null 2>&1"]`) {
		t.Errorf("redirections escaped:\n%s", got)
	}
	if got := dockerfile("sha256:abc", "  ", nil); strings.Contains(got, "RUN") || strings.Contains(got, "LABEL") {
		t.Errorf("blank extra deps and no labels:\n%s", got)
	}
}

func TestBuildContext(t *testing.T) {
	var b strings.Builder
	if err := writeBuildContext(&b, "FROM x\n", []byte("binary")); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(strings.NewReader(b.String()))
	got := map[string]int64{}
	var link *tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
		if h.Name == "links/swerex-remote" {
			link = h
		}
	}
	if got["Dockerfile"] != 0o644 || got["sandboxd"] != 0o755 || got["links/"] != 0o755 || len(got) != 4 {
		t.Errorf("context entries and modes = %v", got)
	}
	if link == nil || link.Typeflag != tar.TypeSymlink || link.Linkname != driver.SandboxdPath {
		t.Errorf("links/swerex-remote = %+v, want a link to %s", link, driver.SandboxdPath)
	}
}

func TestReadBuildStream(t *testing.T) {
	stream := `{"stream":"Step 1/4 : FROM sha256:7a77034f1e9e\n"}
{"stream":" ---\u003e 7a77034f1e9e\n"}
{"stream":"Step 2/4 : COPY sandboxd /opt/sbx/sandboxd\n"}
{"stream":" ---\u003e Using cache\n"}
{"stream":"Step 3/4 : RUN [\"/bin/sh\",\"-c\",\"echo one; exit 3\"]\n"}
{"stream":" ---\u003e Running in 0123456789ab\n"}
{"stream":"one"}
{"stream":"\r\nprogress 50%\rprogress 100%\n"}
{"errorDetail":{"code":3,"message":"The command '/bin/sh -c echo one; exit 3' returned a non-zero code: 3"},"error":"The command '/bin/sh -c echo one; exit 3' returned a non-zero code: 3"}
`
	var out strings.Builder
	_, err := readBuildStream(t.Context(), strings.NewReader(stream), &out)
	var fail *buildFailure
	if !errors.As(err, &fail) {
		t.Fatalf("err = %v, want a buildFailure", err)
	}
	if !strings.HasPrefix(fail.step, "RUN ") {
		t.Errorf("step = %q, want the RUN step", fail.step)
	}
	if want := []string{"one", "progress 50%", "progress 100%"}; !slices.Equal(fail.tail[len(fail.tail)-3:], want) {
		t.Errorf("tail = %q, want it to end with %q", fail.tail, want)
	}
	if !strings.Contains(out.String(), "[build] Step 3/4 : RUN") {
		t.Errorf("progress lacks the step line:\n%s", out.String())
	}
	err = fail.classify("t:1", "base", "echo one; exit 3")
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "returned a non-zero code: 3") || !strings.Contains(err.Error(), "progress 100%") {
		t.Errorf("classified error = %v", err)
	}

	ok := `{"stream":"Step 1/2 : FROM x\n"}
{"aux":{"ID":"sha256:0123456789abcdef"}}
{"stream":"Successfully built 0123456789ab\n"}
`
	id, err := readBuildStream(t.Context(), strings.NewReader(ok), io.Discard)
	if err != nil || id != "sha256:0123456789abcdef" {
		t.Errorf("id, err = %q, %v; want the aux ID", id, err)
	}
}

func TestBuildChecksOptionsFirst(t *testing.T) {
	ctx := t.Context()
	_, err := Build(ctx, noAPI{}, BuildOptions{Base: testBase, Sandboxd: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "go build") {
		t.Errorf("missing sandboxd: %v", err)
	}
	_, err = Build(ctx, noAPI{}, BuildOptions{Base: testBase})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("no sandboxd: %v", err)
	}
	_, err = Build(ctx, noAPI{}, BuildOptions{Base: testBase, Sandboxd: writeFakeSandboxd(t), Tag: "Not A Tag"})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad tag: %v", err)
	}
	_, err = Build(ctx, noAPI{}, BuildOptions{Base: "UPPER:case", Sandboxd: writeFakeSandboxd(t)})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad base: %v", err)
	}
}

func TestBuild(t *testing.T) {
	cli := dockerClient(t)
	baseRes := needImage(t, cli, testBase)
	api := newCountingAPI(cli)
	sandboxd := writeFakeSandboxd(t)
	// A version of its own makes this test's inputs unique, so an image
	// another run left behind cannot be reused by mistake.
	ver := "test-" + randomHex(4)
	progress := &testWriter{t: t}
	opts := BuildOptions{Base: testBase, Sandboxd: sandboxd, Version: ver, Progress: progress}

	img, err := Build(t.Context(), api, opts)
	if err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, img.Ref)
	if !regexp.MustCompile(`^sbx-runtime:[0-9a-f]{16}$`).MatchString(img.Ref) || img.Ref != RuntimeRepository+":"+img.Inputs {
		t.Errorf("Ref = %q, Inputs = %q; want sbx-runtime:<inputs>", img.Ref, img.Inputs)
	}
	if img.Reused || api.n("ImageBuild") != 1 {
		t.Errorf("first build: Reused = %v, builds = %d", img.Reused, api.n("ImageBuild"))
	}
	if img.Kind != KindRuntime || img.Version != ver || img.Base != testBase || img.Labels[driver.LabelManaged] != "true" {
		t.Errorf("labels = %v", img.Labels)
	}
	res, err := cli.ImageInspect(t.Context(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Config.Entrypoint) != 0 ||
		!slices.Equal(res.Config.Cmd, []string{driver.SandboxdPath, "8000", "--working-dir", "/workspace"}) {
		t.Errorf("entrypoint %q cmd %q", res.Config.Entrypoint, res.Config.Cmd)
	}
	data, hdr := fileInImage(t, cli, img.ID, driver.SandboxdPath)
	if hdr == nil || string(data) != fakeSandboxd || fileMode(hdr) != 0o755 || hdr.Uid != 0 {
		t.Errorf("%s in the image: header %+v, content %q", driver.SandboxdPath, hdr, data)
	}
	// SWE-ReX's DockerDeployment runs `swerex-remote` through /bin/sh with
	// the image's own PATH.
	runIn(t, cli, img.ID, "test \"$(command -v swerex-remote)\" = "+SWEReXLink+
		" && test \"$(readlink "+SWEReXLink+")\" = "+driver.SandboxdPath+" && swerex-remote --auth-token x")

	// Same inputs: reused, nothing built.
	builds := api.n("ImageBuild")
	again, err := Build(t.Context(), api, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.ID != img.ID || api.n("ImageBuild") != builds {
		t.Errorf("second build: Reused = %v, ID %s vs %s, builds %d -> %d", again.Reused, again.ID, img.ID, builds, api.n("ImageBuild"))
	}
	if !strings.Contains(progress.String(), "is up to date") {
		t.Errorf("progress does not say the image was reused:\n%s", progress.String())
	}

	// A custom tag for the same inputs: the existing image gets the tag.
	custom := uniqueTag(t)
	removeImageAtCleanup(t, cli, custom)
	opts.Tag = custom
	tagged, err := Build(t.Context(), api, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !tagged.Reused || tagged.ID != img.ID || tagged.Ref != custom || api.n("ImageBuild") != builds {
		t.Errorf("custom tag: %+v, builds %d", tagged, api.n("ImageBuild"))
	}
	if got, err := cli.ImageInspect(t.Context(), custom); err != nil || got.ID != img.ID {
		t.Errorf("%s: %v (id %s, want %s)", custom, err, got.ID, img.ID)
	}

	// Other extra deps: other inputs, a new build, both tags on it.
	opts.ExtraDeps = "echo extra > /extra-dep"
	other, err := Build(t.Context(), api, opts)
	if err != nil {
		t.Fatal(err)
	}
	hashTag := RuntimeRepository + ":" + other.Inputs
	removeImageAtCleanup(t, cli, hashTag)
	if other.Reused || other.Inputs == img.Inputs || other.ID == img.ID || api.n("ImageBuild") != builds+1 {
		t.Errorf("other extra deps: %+v, builds %d", other, api.n("ImageBuild"))
	}
	if got, err := cli.ImageInspect(t.Context(), hashTag); err != nil || got.ID != other.ID {
		t.Errorf("%s: %v", hashTag, err)
	}
	if data, _ := fileInImage(t, cli, other.ID, "/extra-dep"); string(data) != "extra\n" {
		t.Errorf("/extra-dep = %q", data)
	}
	if got, _ := cli.ImageInspect(t.Context(), custom); got.ID != other.ID {
		t.Errorf("%s was not moved to the new build", custom)
	}
	if baseRes.ID == other.ID {
		t.Error("the build returned the base image")
	}
}

func TestBuildExtraDepsFail(t *testing.T) {
	cli := dockerClient(t)
	baseRes := needImage(t, cli, testBase)
	progress := &testWriter{t: t}
	tag := uniqueTag(t)
	_, err := Build(t.Context(), cli, BuildOptions{
		Base:      testBase,
		Sandboxd:  writeFakeSandboxd(t),
		Version:   "test-" + randomHex(4),
		ExtraDeps: "echo sbx-marker-output; exit 3",
		Tag:       tag,
		Progress:  progress,
	})
	// The failed RUN leaves the COPY step's image behind as build cache;
	// it is shared by all runs (same base, same fake sandboxd), but remove
	// it all the same when nothing else uses it.
	removeIntermediates(t, cli, progress.String(), baseRes.ID)
	if err == nil {
		removeImageAtCleanup(t, cli, tag)
		t.Fatal("a failing extra deps command built an image")
	}
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("error class: %v", err)
	}
	for _, want := range []string{"sbx-marker-output", "non-zero code: 3", "extra dependencies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, ierr := cli.ImageInspect(t.Context(), tag); ierr == nil {
		removeImageAtCleanup(t, cli, tag)
		t.Errorf("%s exists after a failed build", tag)
	}
}

// removeIntermediates removes untagged images a build printed (" ---> id"),
// except the base.
func removeIntermediates(t *testing.T, cli *client.Client, output, baseID string) {
	ids := regexp.MustCompile(`---> ([0-9a-f]{12})\b`).FindAllStringSubmatch(output, -1)
	slices.Reverse(ids) // children before their parents
	t.Cleanup(func() {
		ctx := context.Background()
		for _, m := range ids {
			res, err := cli.ImageInspect(ctx, m[1])
			if err != nil || len(realTags(res.RepoTags)) > 0 || sameID(baseID, m[1]) {
				continue
			}
			cli.ImageRemove(ctx, res.ID, client.ImageRemoveOptions{})
		}
	})
}

func TestBuildBaseNotPullable(t *testing.T) {
	cli := dockerClient(t)
	_, err := Build(t.Context(), cli, BuildOptions{Base: unpullableRef, Sandboxd: writeFakeSandboxd(t), Progress: &testWriter{t: t}})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "cannot be pulled") {
		t.Errorf("err = %v, want ErrNotFound saying it cannot be pulled", err)
	}
}
