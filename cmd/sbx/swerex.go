package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sbx-dev/sbx"
)

// writeSWEReX prints what SWE-agent's `remote` deployment needs to reach
// a sandbox started with --protocol swerex: SWE-ReX's
// RemoteDeploymentConfig fields (host with its scheme, port, auth_token),
// which SWE-agent takes under --env.deployment.
func writeSWEReX(w io.Writer, id string, e *sbx.SWEReXEndpoint) {
	if e == nil {
		// The driver said it serves SWE-ReX but reported no port.
		fmt.Fprintf(w, "%s\n", id)
		return
	}
	fmt.Fprintf(w, `sandbox: %s
host:    %s
port:    %d
token:   %s

SWE-agent:
  sweagent run %s ...

Remove it with 'sbx rm %s' when done.
`, id, swerexHost(*e), e.Port, e.Token, swerexFlags(*e), id)
}

// swerexHost is RemoteDeploymentConfig.host: a URL without the port.
func swerexHost(e sbx.SWEReXEndpoint) string {
	if strings.Contains(e.Host, ":") {
		return "http://[" + e.Host + "]"
	}
	return "http://" + e.Host
}

// swerexFlags are SWE-agent's flags for a remote deployment at e.
func swerexFlags(e sbx.SWEReXEndpoint) string {
	return "--env.deployment.type=remote --env.deployment.host=" + swerexHost(e) +
		" --env.deployment.port=" + strconv.Itoa(e.Port) + " --env.deployment.auth_token=" + shellQuote(e.Token)
}
