package image

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/sbx-dev/sbx/internal/driver"
	"github.com/sbx-dev/sbx/internal/errdefs"
)

func TestResolvePresentBaseIsOneInspect(t *testing.T) {
	cli := dockerClient(t)
	base := needImage(t, cli, testBase)
	api := newCountingAPI(cli)

	start := time.Now()
	got, err := Resolve(t.Context(), api, ResolveOptions{BaseImage: testBase})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != testBase || got.ID != base.ID || got.Prebuilt || got.Note != "" {
		t.Errorf("Resolve = %+v", got)
	}
	if api.total() != 1 || api.n("ImageInspect") != 1 {
		t.Errorf("engine calls = %v, want one ImageInspect", api.calls)
	}
	t.Logf("resolved a present base image in %v", elapsed)
}

func TestResolveRuntimeImage(t *testing.T) {
	cli := dockerClient(t)
	needImage(t, cli, testBase)

	// A plain image given as the runtime image: used, sandboxd injected.
	api := newCountingAPI(cli)
	got, err := Resolve(t.Context(), api, ResolveOptions{RuntimeImage: testBase, BaseImage: unpullableRef})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != testBase || got.Prebuilt || api.total() != 1 {
		t.Errorf("Resolve = %+v after %v", got, api.calls)
	}

	// An sbx runtime image: prebuilt.
	img, err := Build(t.Context(), cli, BuildOptions{
		Base: testBase, Sandboxd: writeFakeSandboxd(t), Version: "test-" + randomHex(4), Tag: uniqueTag(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, img.Ref)
	removeImageAtCleanup(t, cli, RuntimeRepository+":"+img.Inputs)
	got, err = Resolve(t.Context(), cli, ResolveOptions{RuntimeImage: img.Ref})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != img.Ref || got.ID != img.ID || !got.Prebuilt {
		t.Errorf("Resolve(runtime image) = %+v", got)
	}

	// A runtime image that is missing is an error, with no fallback.
	_, err = Resolve(t.Context(), cli, ResolveOptions{RuntimeImage: unpullableRef, BaseImage: testBase})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "sbx image build") {
		t.Errorf("missing runtime image: %v", err)
	}
}

func TestResolveMissingBaseWithoutBootstrap(t *testing.T) {
	cli := dockerClient(t)
	var progress bytes.Buffer
	_, err := Resolve(t.Context(), cli, ResolveOptions{
		BaseImage:    unpullableRef,
		BootstrapTag: uniqueTag(t), // never created
		Progress:     &progress,
	})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{unpullableRef, "cannot be pulled", "`sbx image bootstrap`", "SANDBOX_BASE_CONTAINER_IMAGE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if !strings.Contains(progress.String(), "[pull] pulling "+unpullableRef) {
		t.Errorf("no pull attempt shown: %q", progress.String())
	}
}

func TestResolveFallsBackToBootstrapped(t *testing.T) {
	cli := dockerClient(t)
	base := needImage(t, cli, testBase)
	tag := uniqueTag(t)
	if _, err := cli.ImageTag(t.Context(), client.ImageTagOptions{Source: testBase, Target: tag}); err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, tag)

	got, err := Resolve(t.Context(), cli, ResolveOptions{BaseImage: unpullableRef, BootstrapTag: tag})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != tag || got.ID != base.ID || got.Prebuilt {
		t.Errorf("Resolve = %+v, want %s", got, tag)
	}
	if !strings.Contains(got.Note, unpullableRef) || !strings.Contains(got.Note, "using the bootstrapped image "+tag) {
		t.Errorf("Note = %q", got.Note)
	}
}

// With no BootstrapTag, the fallback is the default tag or else the newest
// image labelled kind=base; which one depends on the machine, but one
// labelled by this test exists, so the fallback must find a base image.
func TestResolveFallbackByLabel(t *testing.T) {
	cli := dockerClient(t)
	needImage(t, cli, testBase)
	tag := uniqueTag(t)
	df := "FROM " + testBase + "\nLABEL " + driver.LabelManaged + "=true " + LabelKind + "=" + KindBase + "\n"
	var bc bytes.Buffer
	if err := writeBuildContextFiles(&bc, map[string]string{"Dockerfile": df}); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(t.Context(), &bc, client.ImageBuildOptions{Tags: []string{tag}, Version: "1", Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = readBuildStream(t.Context(), resp.Body, &testWriter{t: t})
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, tag)

	got, err := Resolve(t.Context(), cli, ResolveOptions{BaseImage: unpullableRef})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cli.ImageInspect(t.Context(), got.Ref)
	if err != nil {
		t.Fatalf("fallback %q: %v", got.Ref, err)
	}
	if got.Ref != DefaultBootstrapTag && res.Config.Labels[LabelKind] != KindBase {
		t.Errorf("fallback %s is not a bootstrapped image: %v", got.Ref, res.Config.Labels)
	}
	if got.Note == "" {
		t.Error("no Note for the substitution")
	}
	t.Logf("fell back to %s", got.Ref)
}

func TestResolveBadReference(t *testing.T) {
	_, err := Resolve(t.Context(), noAPI{}, ResolveOptions{BaseImage: "Bad Ref"})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("err = %v, want ErrInvalidArgument", err)
	}
}

func TestPullUnreachable(t *testing.T) {
	cli := dockerClient(t)
	err := Pull(t.Context(), cli, unpullableRef, nil)
	if !errors.Is(err, errdefs.ErrUnavailable) && !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v, want ErrUnavailable or ErrNotFound", err)
	}
	t.Log(err)
}

func TestList(t *testing.T) {
	cli := dockerClient(t)
	needImage(t, cli, testBase)
	img, err := Build(t.Context(), cli, BuildOptions{
		Base: testBase, Sandboxd: writeFakeSandboxd(t), Version: "test-" + randomHex(4),
	})
	if err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, img.Ref)
	list, err := List(t.Context(), cli)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Labels[driver.LabelManaged] != "true" {
			t.Errorf("List returned an image sbx did not make: %+v", l)
		}
		if l.ID == img.ID {
			if l.Ref != img.Ref || l.Kind != KindRuntime || l.Inputs != img.Inputs || l.Size == 0 || l.Created.IsZero() {
				t.Errorf("listed %+v, built %+v", l, img)
			}
			return
		}
	}
	t.Errorf("List does not include %s", img.Ref)
}

// Defect: a base image that cannot be pulled was tried again on every run
// (each `sbx run`, each new runtime). A failure recorded in the file is not
// tried again within its TTL, by this process or the next; once the TTL
// passes it is.
func TestResolveRemembersFailedPull(t *testing.T) {
	cli := dockerClient(t)
	needImage(t, cli, testBase)
	tag := uniqueTag(t)
	if _, err := cli.ImageTag(t.Context(), client.ImageTagOptions{Source: testBase, Target: tag}); err != nil {
		t.Fatal(err)
	}
	removeImageAtCleanup(t, cli, tag)
	path := t.TempDir() + "/pull-failures.json"
	now := time.Now()
	clock := func() time.Time { return now }

	for round, wantPull := range []bool{true, false, false} {
		// A new PullFailures each round stands for a new process.
		api := newCountingAPI(cli)
		var progress bytes.Buffer
		got, err := Resolve(t.Context(), api, ResolveOptions{
			BaseImage: unpullableRef, BootstrapTag: tag, Progress: &progress,
			Failures: &PullFailures{Path: path, Now: clock},
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got.Ref != tag {
			t.Errorf("round %d: Resolve = %+v, want %s", round, got, tag)
		}
		if pulled := api.n("ImagePull") > 0; pulled != wantPull {
			t.Errorf("round %d: pulled = %v, want %v (calls %v)", round, pulled, wantPull, api.calls)
		}
		if !strings.Contains(got.Note, "SANDBOX_BASE_CONTAINER_IMAGE="+tag) {
			t.Errorf("round %d: the note does not say how to skip the attempt: %q", round, got.Note)
		}
	}
	now = now.Add(16 * time.Minute)
	api := newCountingAPI(cli)
	if _, err := Resolve(t.Context(), api, ResolveOptions{BaseImage: unpullableRef, BootstrapTag: tag,
		Failures: &PullFailures{Path: path, Now: clock}}); err != nil {
		t.Fatal(err)
	}
	if api.n("ImagePull") == 0 {
		t.Errorf("after the TTL the pull was not tried again: %v", api.calls)
	}
}

func TestPullFailuresFileIsOnlyACache(t *testing.T) {
	path := t.TempDir() + "/pf.json"
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &PullFailures{Path: path}
	if _, _, ok := p.Recent("x"); ok {
		t.Fatal("a corrupt file gave a failure")
	}
	p.Record("x", "no registry")
	if r, _, ok := (&PullFailures{Path: path}).Recent("x"); !ok || r != "no registry" {
		t.Fatalf("Recent after Record = %q, %v", r, ok)
	}
	p.Forget("x")
	if _, _, ok := (&PullFailures{Path: path}).Recent("x"); ok {
		t.Fatal("Forget did not forget")
	}
	// A file holding null (JSON's nil map) must not make Record panic.
	if err := os.WriteFile(path, []byte("null"), 0o644); err != nil {
		t.Fatal(err)
	}
	(&PullFailures{Path: path}).Record("x", "no registry")
	// A failure from the future (the clock was set back) does not stand for
	// ever, and one engine's failure is not another's.
	now := time.Now()
	(&PullFailures{Path: path, Now: func() time.Time { return now.Add(24 * time.Hour) }}).Record("y", "no registry")
	if _, _, ok := (&PullFailures{Path: path}).Recent("y"); ok {
		t.Fatal("a failure recorded in the future stands")
	}
	(&PullFailures{Path: path, Engine: "unix:///a"}).Record("z", "no registry")
	if _, _, ok := (&PullFailures{Path: path, Engine: "tcp://b:2375"}).Recent("z"); ok {
		t.Fatal("engine a's failure stops pulls on engine b")
	}
	var nilP *PullFailures
	nilP.Record("x", "y") // a nil cache records nothing and does not panic
	if _, _, ok := nilP.Recent("x"); ok {
		t.Fatal("nil cache")
	}
}
