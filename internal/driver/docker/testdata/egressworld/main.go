// Command egressworld is the outside world of the egress tests, run in
// containers the test makes on a network of its own: an HTTP and HTTPS
// server (self-signed) with a raw TCP echo, or, with -dns, the resolver
// that names those servers. Nothing of it reaches past that network.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func main() {
	name := flag.String("name", "", "who this server says it is")
	certNames := flag.String("cert", "", "names of the certificate, comma separated")
	dns := flag.String("dns", "", "serve DNS only: name=ip,… (a name \"*.x\" answers for everything under x)")
	flag.Parse()
	if *dns != "" {
		log.Fatal(serveDNS(*dns))
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64); err == nil && n > 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			_, _ = io.CopyN(w, zeros{}, n)
			return
		}
		fmt.Fprintf(w, "hello from %s (host %s)\n", *name, r.Host)
	})
	go func() { log.Fatal(http.ListenAndServe(":80", h)) }()
	go func() { log.Fatal(echo(":7")) }()
	srv := &http.Server{Addr: ":443", Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{selfSigned(strings.Split(*certNames, ","))}}}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func echo(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

func selfSigned(names []string) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serveDNS(spec string) error {
	table := map[string]netip.Addr{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(kv, "=")
		table[strings.ToLower(k)] = netip.MustParseAddr(v)
	}
	lookup := func(n string) (netip.Addr, bool) {
		if a, ok := table[n]; ok {
			return a, true
		}
		for k, a := range table {
			if strings.HasPrefix(k, "*.") && strings.HasSuffix(n, k[1:]) {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	pc, err := net.ListenPacket("udp", ":53")
	if err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
			continue
		}
		q := m.Questions[0]
		m.Response, m.Authoritative, m.RecursionAvailable = true, true, true
		a, ok := lookup(strings.TrimSuffix(strings.ToLower(q.Name.String()), "."))
		switch {
		case !ok:
			m.RCode = dnsmessage.RCodeNameError
		case q.Type == dnsmessage.TypeA:
			m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
				Body: &dnsmessage.AResource{A: a.As4()}}}
		}
		if b, err := m.Pack(); err == nil {
			_, _ = pc.WriteTo(b, from)
		}
	}
}
