package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// urls derives a runtime's URLs in the mode the service runs in (spec
// §7). Path mode (no Domain): url = PublicURL/<runtime_id>, services at
// url/<service>. Subdomain mode: url = scheme://<runtime_id>.<Domain>[:port]
// and services at scheme://<service>-<netloc of url>, which is how every
// client derives them when the url's path does not start with the id.
type urls struct {
	base   string // PublicURL as configured, without a trailing slash
	public *url.URL
	// publicHost is PublicURL's host name, lower case, without the port:
	// a request to <service>-<publicHost> is the app server of Nov 2025,
	// which builds service links in subdomain form even in path mode.
	publicHost string
	// svcHosts are <service>-<publicHost>, made once: route runs on
	// every request, polls included.
	svcHosts map[string]string
	domain   string
}

func newURLs(publicURL, domain string) (urls, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return urls{}, fmt.Errorf("server: PublicURL %q is not an absolute URL", publicURL)
	}
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	if d != "" {
		if err := checkDomain(d); err != nil {
			return urls{}, err
		}
	}
	us := urls{base: strings.TrimRight(publicURL, "/"), public: u, publicHost: strings.ToLower(u.Hostname()), domain: d, svcHosts: map[string]string{}}
	if us.publicHost != "" {
		for _, svc := range []string{svcVSCode, svcWorker1, svcWorker2} {
			us.svcHosts[svc+"-"+us.publicHost] = svc
		}
	}
	return us, nil
}

// checkDomain wants a DNS name (labels of letters, digits and hyphens):
// it becomes the suffix of every runtime's host name.
func checkDomain(d string) error {
	if len(d) > 200 || strings.ContainsAny(d, ":/") {
		return fmt.Errorf("server: domain %q: want a host name such as sandboxes.example.com (no scheme, no port)", d)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("server: domain %q: %q is not a DNS label", d, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("server: domain %q: %q is not a DNS label", d, label)
			}
		}
	}
	return nil
}

// portSuffix is PublicURL's explicit port, which subdomain URLs keep (a
// service on :8000 serves its runtimes' host names on :8000 too).
func (u urls) portSuffix() string {
	if p := u.public.Port(); p != "" {
		return ":" + p
	}
	return ""
}

// runtime is a runtime's url.
func (u urls) runtime(id string) string {
	if u.domain == "" {
		return u.base + "/" + id
	}
	return u.public.Scheme + "://" + id + "." + u.domain + u.portSuffix()
}

// service is the url of one of a runtime's services.
func (u urls) service(id, svc string) string {
	if u.domain == "" {
		return u.runtime(id) + "/" + svc
	}
	return u.public.Scheme + "://" + svc + "-" + id + "." + u.domain + u.portSuffix()
}

var errNotRuntimeHost = errors.New("not a runtime's host name")

// route reads a request's Host. A runtime's own host name (subdomain
// mode) gives its id and service, and the whole path is the workload's; a
// service-prefixed public host name gives the service only (the id is in
// the path); anything else is the API's.
func (u urls) route(hostport string) (id, svc string, err error) {
	host := hostport
	if h, _, perr := net.SplitHostPort(hostport); perr == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if svc, ok := u.svcHosts[host]; ok {
		return "", svc, nil
	}
	if u.domain == "" || !strings.HasSuffix(host, "."+u.domain) {
		return "", "", errNotRuntimeHost
	}
	label := strings.TrimSuffix(host, "."+u.domain)
	if strings.Contains(label, ".") {
		return "", "", errNotRuntimeHost
	}
	svc = svcMain
	for _, s := range []string{svcVSCode, svcWorker1, svcWorker2} {
		if rest, ok := strings.CutPrefix(label, s+"-"); ok {
			svc, label = s, rest
			break
		}
	}
	if !strings.HasPrefix(label, runtimeIDPrefix) || len(label) == len(runtimeIDPrefix) {
		return "", "", errNotRuntimeHost
	}
	return label, svc, nil
}
