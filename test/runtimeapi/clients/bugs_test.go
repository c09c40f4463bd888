package clients

import (
	"strings"
	"testing"
)

// The lifecycles must fail on a service that gets the contract wrong; each
// case turns one bug on in the fake and names what the error must say.
func TestLifecyclesCatchServiceBugs(t *testing.T) {
	type bug struct {
		name string
		set  func(*fakeService)
		want string
	}
	lost := bug{"processes lost on resume", func(f *fakeService) { f.loseProcessesOnResume = true }, "counter"}
	revived := bug{"stopped session revived", func(f *fakeService) { f.reviveStopped = true }, "want a new one"}
	run := map[string]func(*testing.T, *fakeService) error{
		"SDK": func(t *testing.T, f *fakeService) error {
			_, err := RunSDK(t.Context(), SDKOptions{Config: f.cfg(), ServerImage: "img"})
			return err
		},
		"App": func(t *testing.T, f *fakeService) error {
			_, err := RunApp(t.Context(), AppOptions{Config: f.cfg(), Variant: AppB, Image: "img"})
			return err
		},
		"V0": func(t *testing.T, f *fakeService) error {
			_, err := RunV0(t.Context(), V0Options{Config: f.cfg(), Image: "img"})
			return err
		},
	}
	cases := map[string][]bug{
		"SDK": {lost, revived, {"buffered stream", func(f *fakeService) { f.bufferStream = true }, "buffered"}},
		"App": {lost, {"paused still ready", func(f *fakeService) { f.pausedPodReady = true }, "want PAUSED"}},
		"V0":  {lost, revived},
	}
	for client, bugs := range cases {
		for _, b := range bugs {
			t.Run(client+"/"+b.name, func(t *testing.T) {
				f := newFake(t)
				b.set(f)
				err := run[client](t, f)
				if err == nil || !strings.Contains(err.Error(), b.want) {
					t.Errorf("%s with %q: err %v, want one mentioning %q", client, b.name, err, b.want)
				}
			})
		}
	}
}
