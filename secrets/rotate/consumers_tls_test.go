package rotate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestResolvedEndpointsOverHTTPS: a consumer whose certificate names only
// the Service, reached through ResolvedEndpoints at its address, does not
// verify (it counts as unreachable), as ResolvedEndpoints says; with
// Client verifying the Service's name, it does.
func TestResolvedEndpointsOverHTTPS(t *testing.T) {
	const name = "mcp-status.apps.svc.cluster.local"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	src := memory.New()
	src.Set("db", "value")
	cur, _ := src.Fetch(ctxT(t), "db")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"key":"mem://db","loaded":true,"version":%q}]}`, cur.Current.Version())
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	endpoints, err := rotate.ResolvedEndpoints("https://"+name+":"+u.Port()+"/status", func(context.Context, string) ([]string, error) {
		return []string{u.Hostname()}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	client := func(serverName string) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}

	byAddress := rotate.Consumers{Endpoints: endpoints, Key: memKey, Client: client("")}
	if err := byAddress.Check(ctxT(t), "db", cur.Current, cur.Previous); !errors.Is(err, rotate.ErrConsumerUnreachable) {
		t.Fatalf("a certificate naming only the Service, checked against the address: %v, want ErrConsumerUnreachable", err)
	}
	byName := rotate.Consumers{Endpoints: endpoints, Key: memKey, Client: client(name)}
	if err := byName.Check(ctxT(t), "db", cur.Current, cur.Previous); err != nil {
		t.Fatalf("with Client verifying the Service's name: %v", err)
	}
}
