package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace with only loopback, made for one test: what
// runs in it reaches nothing but the listeners the test opens in it.
type Netns struct {
	Name string
}

// Netns hosts resolve to addresses of its loopback device outside 127/8
// (RFC 2544's benchmark range 198.18.0.0/15, routed nowhere), one per
// name, so a connect to a faked public service looks like one to a remote
// host, as it does on a real machine, and not like a local listener.
const serviceNet = "198.18.0."

// NewNetns creates a network namespace named name with lo up (127.0.0.1,
// and 198.18.0.N for the N-th of hosts) and an /etc/hosts of its own (ip
// netns exec bind-mounts /etc/netns/NAME/hosts) that names each of hosts,
// and a resolv.conf naming 127.0.0.1. It is removed when the test ends.
func NewNetns(tb testing.TB, name string, hosts ...string) *Netns {
	tb.Helper()
	exec.Command("ip", "netns", "del", name).Run() // a leftover of a killed run
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	dir := filepath.Join("/etc/netns", name)
	tb.Cleanup(func() {
		exec.Command("ip", "netns", "del", name).Run()
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		tb.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	h := "127.0.0.1 localhost\n::1 localhost\n"
	for i, n := range hosts {
		addr := serviceNet + strconv.Itoa(i+1)
		if out, err := exec.Command("ip", "-n", name, "addr", "add", addr+"/32", "dev", "lo").CombinedOutput(); err != nil {
			tb.Fatalf("ip -n %s addr add %s: %v: %s", name, addr, err, out)
		}
		h += addr + " " + n + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(h), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return &Netns{Name: name}
}

// inNetns runs f on an OS thread that has joined the namespace. The thread
// is never unlocked, so the runtime retires it instead of reusing it
// elsewhere in the wrong namespace; sockets f opens stay in the namespace.
func (n *Netns) inNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/var/run/netns", n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Listen opens a TCP listener inside the namespace until the test ends.
func (n *Netns) Listen(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	var ln net.Listener
	if err := n.inNetns(func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		tb.Fatalf("listen %s in netns %s: %v", addr, n.Name, err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// ListenUDP opens a UDP socket inside the namespace until the test ends.
func (n *Netns) ListenUDP(tb testing.TB, addr string) *net.UDPConn {
	tb.Helper()
	var c net.PacketConn
	if err := n.inNetns(func() (err error) { c, err = net.ListenPacket("udp4", addr); return }); err != nil {
		tb.Fatalf("listen udp %s in netns %s: %v", addr, n.Name, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// Command is argv run inside the namespace (ip netns exec execs argv in
// place, so the command's pid is the program's).
func (n *Netns) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// TestCA is a certificate authority made for one test and a server
// certificate it signed for the given names.
type TestCA struct {
	// CertFile is the CA certificate (PEM), for NODE_EXTRA_CA_CERTS,
	// SSL_CERT_FILE and the like.
	CertFile string
	// Server is the TLS config of a server with the signed certificate.
	Server *tls.Config
}

// NewTestCA makes a CA and a server certificate for names (DNS names or IP
// addresses), written under the test's temp dir.
func NewTestCA(tb testing.TB, names ...string) *TestCA {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentwatch test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	file := filepath.Join(tb.TempDir(), "ca.pem")
	if err := os.WriteFile(file, caPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &TestCA{CertFile: file, Server: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}
}

// Tail is the last n bytes of s, for failure messages with a program's output.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
