package main

import "context"

const resumeAbout = `
Thaw paused sandboxes and wait until each answers.`

func (a *app) cmdResume(ctx context.Context, args []string) error {
	f := newFlags("resume", "ID...", resumeAbout)
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("resume", "want at least one sandbox id")
	}
	return a.resume(ctx, f.Args())
}

func (a *app) resume(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error {
		_, err := rt.Resume(ctx, id)
		return err
	})
}
