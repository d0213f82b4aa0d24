package session

import (
	"hash/maphash"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"syscall"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/internal/llmapi"
	"github.com/agentwatch/agentwatch/internal/pathglob"
	"github.com/agentwatch/agentwatch/internal/secrets"
	"github.com/agentwatch/agentwatch/internal/semconv"
	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/kevent"
)

// SecretsConfig configures the search for secrets in what a session sends
// to a model provider.
type SecretsConfig struct {
	Enabled bool
	// Files are the sensitive path globs (pathglob syntax, "~" the
	// process's homes) whose content is fingerprinted when a session
	// process opens them for reading.
	Files []string
	// FingerprintFiles enables reading those files (from userspace, when
	// the open record arrives).
	FingerprintFiles bool
	// MaxFileBytes is read of each file; default 64 KiB.
	MaxFileBytes int
	// MaxFingerprints bounds one session's fingerprints; default 4096.
	MaxFingerprints int
}

// DefaultSecretFiles are the seed policy's sensitive paths.
var DefaultSecretFiles = []string{"~/.aws/*", "~/.ssh/*", "~/.kube/*", "~/.config/gcloud/*", "~/.gnupg/**", "**/.env*", "**/credentials*"}

var scanSeed = maphash.MakeSeed()

const (
	minCachedScan          = 64
	maxCachedScans         = 1 << 16
	defaultSecretFileBytes = 64 << 10
	maxSecretFilesRead     = 256 // per session
	maxReportedSecrets     = 4096
	secretMarker           = "[REDACTED:secret]"
)

// SecretStats count the secret search's work.
type SecretStats struct {
	FilesRead    uint64 // sensitive files fingerprinted
	FileBytes    uint64
	FileErrors   uint64 // could not be read (gone, not regular, too many)
	Requests     uint64 // requests scanned
	ScannedBytes uint64
	Findings     uint64 // secrets reported (first time in their session)
}

type secretsState struct {
	cfg   SecretsConfig
	globs []*pathglob.Glob
	homes *pathglob.Homes
	st    SecretStats
}

// sessSecrets is one session's part.
type sessSecrets struct {
	fp       *secrets.Fingerprints
	read     map[string]fileStamp // sensitive files fingerprinted
	reported map[uint64]bool      // secrets already reported in the session
	// scanned are the texts (by hash) already scanned against the current
	// fingerprints: a conversation re-sends its history with every
	// request, and only what is new costs a scan.
	scanned map[uint64]struct{}
}

type fileStamp struct {
	size  int64
	mtime int64
}

func newSecretsState(cfg SecretsConfig) (*secretsState, error) {
	if cfg.Files == nil {
		cfg.Files = DefaultSecretFiles
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = defaultSecretFileBytes
	}
	st := &secretsState{cfg: cfg, homes: pathglob.NewHomes(nil)}
	for _, f := range cfg.Files {
		g, err := pathglob.Compile(f)
		if err != nil {
			return nil, err
		}
		st.globs = append(st.globs, g)
	}
	return st, nil
}

// SecretStats returns the secret search's counters (tracker goroutine).
func (t *Tracker) SecretStats() SecretStats {
	if t.in == nil || t.in.sec == nil {
		return SecretStats{}
	}
	return t.in.sec.st
}

// homesOf are the directories "~" stands for in the sensitive globs for p:
// for now the home of its uid in the host's user database. The integrator
// points this at the process's HOME and its own root's passwd home.
func (t *Tracker) homesOf(p *proc) []string {
	var out []string
	add := func(h string) {
		if h != "" && h != "/" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	// HOME as of the exec and the passwd home under the process's own
	// root, as for the policy's "~"; the host's passwd when neither is known.
	add(p.img.envHome)
	add(p.img.userHome)
	if len(out) == 0 {
		add(t.in.sec.homes.Home(int64(p.img.uid)))
	}
	return out
}

func (s *session) secretsState(max int) *sessSecrets {
	si := s.intentState()
	if si.sec == nil {
		si.sec = &sessSecrets{fp: secrets.NewFingerprints(max), read: map[string]fileStamp{}, reported: map[uint64]bool{},
			scanned: map[uint64]struct{}{}}
	}
	return si.sec
}

// sensitiveOpen fingerprints the content of a sensitive file a session
// process opened for reading, read through the process's root.
func (t *Tracker) sensitiveOpen(p *proc, e *kevent.Open, file string) {
	if t.in == nil || t.in.sec == nil || !t.in.sec.cfg.FingerprintFiles {
		return
	}
	const oPath = 0x200000
	if e.Ret < 0 || e.OpenFlags&oPath != 0 || e.OpenFlags&syscall.O_ACCMODE == syscall.O_WRONLY {
		return
	}
	sec := t.in.sec
	homes := t.homesOf(p)
	if !slices.ContainsFunc(sec.globs, func(g *pathglob.Glob) bool {
		if !g.HasHome() {
			return g.Match(file, "")
		}
		return slices.ContainsFunc(homes, func(h string) bool { return g.Match(file, h) })
	}) {
		return
	}
	ss := p.sess.secretsState(sec.cfg.MaxFingerprints)
	b, stamp, ok := t.readSensitive(p, file, sec.cfg.MaxFileBytes)
	if !ok {
		sec.st.FileErrors++
		return
	}
	if old, seen := ss.read[file]; seen && old == stamp {
		return
	}
	if len(ss.read) >= maxSecretFilesRead {
		sec.st.FileErrors++
		return
	}
	ss.read[file] = stamp
	ss.fp.AddFile(file, b)
	clear(ss.scanned) // what was scanned before may hold this file's content
	sec.st.FilesRead++
	sec.st.FileBytes += uint64(len(b))
}

// readSensitive reads a regular file as the process sees it: through its
// root in /proc (its parent's or the session root's when it is gone).
func (t *Tracker) readSensitive(p *proc, file string, max int) ([]byte, fileStamp, bool) {
	for _, pid := range [...]uint32{p.key.PID, p.ppid, p.sess.rootPID} {
		if pid == 0 {
			continue
		}
		full := path.Join(t.cfg.ProcRoot, strconv.FormatUint(uint64(pid), 10), "root", file)
		f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fileStamp{}, false
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fileStamp{}, false
		}
		b, err := io.ReadAll(io.LimitReader(f, int64(max)))
		f.Close()
		if err != nil {
			return nil, fileStamp{}, false
		}
		return b, fileStamp{fi.Size(), fi.ModTime().UnixNano()}, true
	}
	return nil, fileStamp{}, false
}

// secretFinding is what a request sent, for its record and chat span.
type secretFinding struct {
	count      int
	kinds      []string
	encodings  []string
	files      []string
	toolCallID string
	toolName   string
}

// scanRequest looks for secrets in everything a request body sends. Only
// secrets not yet reported in the session count: a conversation re-sends
// its history with every request, and the first one that carried a secret
// is the finding.
func (t *Tracker) scanRequest(p *proc, body []byte) *secretFinding {
	if t.in == nil || t.in.sec == nil {
		return nil
	}
	sec := t.in.sec
	ss := p.sess.secretsState(sec.cfg.MaxFingerprints)
	sec.st.Requests++
	var f secretFinding
	sc := secrets.Scanner{FP: ss.fp}
	llmapi.RequestContent(body, func(part llmapi.Part) {
		if len(part.Text) >= minCachedScan {
			h := maphash.String(scanSeed, part.Text)
			if _, ok := ss.scanned[h]; ok {
				return
			}
			if len(ss.scanned) >= maxCachedScans {
				clear(ss.scanned)
			}
			ss.scanned[h] = struct{}{}
		}
		sec.st.ScannedBytes += uint64(len(part.Text))
		sc.Scan(part.Text, func(fd secrets.Finding) {
			if ss.reported[fd.Hash] {
				return
			}
			if len(ss.reported) < maxReportedSecrets {
				ss.reported[fd.Hash] = true
			}
			f.count++
			addOnce(&f.kinds, fd.Kind)
			addOnce(&f.encodings, fd.Encoding)
			if fd.File != "" {
				addOnce(&f.files, fd.File)
			}
			if f.toolCallID == "" && part.ToolCallID != "" {
				f.toolCallID, f.toolName = part.ToolCallID, part.ToolName
			}
		})
	})
	if f.count == 0 {
		return nil
	}
	sec.st.Findings += uint64(f.count)
	return &f
}

func addOnce(sl *[]string, v string) {
	if !slices.Contains(*sl, v) {
		*sl = append(*sl, v)
	}
}

func putSecretFinding(a pcommon.Map, f *secretFinding) {
	if f == nil {
		return
	}
	a.PutInt(semconv.SecretCount, int64(f.count))
	putStrings(a, semconv.SecretKinds, f.kinds)
	putStrings(a, semconv.SecretEncodings, f.encodings)
	putStrings(a, semconv.SecretFiles, f.files)
	if f.toolCallID != "" {
		a.PutStr(semconv.SecretToolCallID, utf8Safe(f.toolCallID))
	}
	if f.toolName != "" {
		a.PutStr(semconv.SecretToolName, utf8Safe(f.toolName))
	}
}

// secretRedactor removes from exported content what the secret scanner
// finds, the session's file fingerprints included; key shapes and their
// encodings are removed even with the search off.
func (t *Tracker) secretRedactor(p *proc) func(string) string {
	var fp *secrets.Fingerprints
	if t.in != nil && t.in.sec != nil {
		fp = p.sess.secretsState(t.in.sec.cfg.MaxFingerprints).fp
	}
	return func(s string) string { return secrets.Redact(s, fp, secretMarker) }
}
