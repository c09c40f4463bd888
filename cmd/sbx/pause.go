package main

import "context"

const pauseAbout = `
Freeze sandboxes with their processes: nothing runs, nothing is lost, and
'sbx resume' continues where they were (unlike stop and start).`

func (a *app) cmdPause(ctx context.Context, args []string) error {
	f := newFlags("pause", "ID...", pauseAbout)
	if err := f.parse(a, args); err != nil {
		return err
	}
	if f.NArg() == 0 {
		return usageErrorf("pause", "want at least one sandbox id")
	}
	return a.pause(ctx, f.Args())
}

func (a *app) pause(ctx context.Context, ids []string) error {
	rt, err := a.openRuntime(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	return a.forEachID(ids, func(id string) error { return rt.Pause(ctx, id) })
}
