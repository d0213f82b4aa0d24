// Package policy holds the agent_score rule catalogue, the policy sources (the
// collector config and the TOML policy file), and the compiled, immutable
// policy that matches single events. State across events (chains, unique
// destinations, DNS answers) lives in the engine package.
package policy

import "math/bits"

// Rule indices of the built-in rules. Custom rules follow them.
const (
	RuleFileCloudCredentials = iota
	RuleFileSSHKey
	RuleFileKube
	RuleFileGcloud
	RuleFileGnupg
	RuleFileDotenv
	RuleFileCredentials
	RuleFileShadow
	RuleFileSensitive

	RuleBinTransfer
	RuleBinEncode
	RuleBinDNSTool
	RuleBinReverseShell
	RuleBinStaging
	RuleBinLateral
	RuleBinPermission
	RuleBinOther

	RuleArgvCurlUpload
	RuleArgvWgetPostFile
	RuleArgvNetcatExec
	RuleArgvDevTCP
	RuleArgvChmodExec
	RuleArgvEncodeSensitive
	RuleArgvArchiveSensitive
	RuleArgvUploadSensitive

	RuleNetNotAllowed
	RuleNetUnresolvedIP
	RuleNetNonStandardPort
	RuleNetManyDestinations

	RuleDNSNotAllowed
	RuleDNSLongLabel
	RuleDNSHighEntropy
	RuleDNSForeignResolver
	RuleDNSTunnel

	RuleChainExfiltration
	RuleChainDownloadExec

	RuleEnforceDenied
	RuleEnforceAction

	RuleLLMSecretToModel

	RuleFilePersistence

	RuleFileProcessSecrets
	RuleExecFileless
	RuleExecLoader
	RuleFlowEncodeSensitive
	RuleFileSensitiveAlias
	RuleFileSensitiveChange
	RuleFileChmodExec

	RuleNetEgressVolume

	numBuiltin
)

// MaxRules bounds built-in plus custom rules; a RuleSet is a fixed-size
// bitset so that matching never allocates.
const MaxRules = 256

// MaxCustomRules is how many custom rules a policy may add.
const MaxCustomRules = MaxRules - numBuiltin

// Categories (ATT&CK tactic names in snake_case, plus "enforcement").
const (
	CatCredentialAccess = "credential_access"
	CatCollection       = "collection"
	CatExfiltration     = "exfiltration"
	CatCommandControl   = "command_and_control"
	CatExecution        = "execution"
	CatLateralMovement  = "lateral_movement"
	CatDiscovery        = "discovery"
	CatDefenseEvasion   = "defense_evasion"
	CatEnforcement      = "enforcement"
	CatPersistence      = "persistence"
)

// Rule is one scoring rule. Score is 1–100.
type Rule struct {
	ID          string
	Category    string
	Score       int
	Description string
	Enabled     bool
	Custom      bool
}

// MinDenialScore is the floor for enforce.denied: a denial is at least high.
const MinDenialScore = 70

// builtinRules is the catalogue, in index order. The README rule table is
// generated from the same data by a test, so the two cannot drift.
var builtinRules = [numBuiltin]Rule{
	RuleFileCloudCredentials: {ID: "file.cloud_credentials", Category: CatCredentialAccess, Score: 80,
		Description: "cloud provider credentials opened (listed paths under ~/.aws, ~/.azure, ~/.oci or ~/.aliyun)"},
	RuleFileSSHKey: {ID: "file.ssh_key", Category: CatCredentialAccess, Score: 80,
		Description: "SSH keys or SSH client configuration opened (~/.ssh)"},
	RuleFileKube: {ID: "file.kube", Category: CatCredentialAccess, Score: 75,
		Description: "Kubernetes client configuration or tokens opened (~/.kube)"},
	RuleFileGcloud: {ID: "file.gcloud", Category: CatCredentialAccess, Score: 80,
		Description: "Google Cloud SDK credentials opened (~/.config/gcloud)"},
	RuleFileGnupg: {ID: "file.gnupg", Category: CatCredentialAccess, Score: 75,
		Description: "GnuPG keyring opened (~/.gnupg)"},
	RuleFileDotenv: {ID: "file.dotenv", Category: CatCredentialAccess, Score: 50,
		Description: "dotenv file opened (.env*), scored wherever it is"},
	RuleFileCredentials: {ID: "file.credentials", Category: CatCredentialAccess, Score: 60,
		Description: "file named credentials* opened, scored wherever it is"},
	RuleFileShadow: {ID: "file.shadow", Category: CatCredentialAccess, Score: 90,
		Description: "system password hashes opened (/etc/shadow, /etc/gshadow and their backups)"},
	RuleFileSensitive: {ID: "file.sensitive", Category: CatCredentialAccess, Score: 50,
		Description: "path listed in sensitive_paths that fits none of the classes above"},

	RuleBinTransfer: {ID: "binary.transfer", Category: CatExfiltration, Score: 20,
		Description: "risky binary run: network transfer tool (curl, wget, …)"},
	RuleBinEncode: {ID: "binary.encode", Category: CatDefenseEvasion, Score: 30,
		Description: "risky binary run: encoder (base64, xxd, …)"},
	RuleBinDNSTool: {ID: "binary.dns_tool", Category: CatDiscovery, Score: 20,
		Description: "risky binary run: DNS tool (dig, nslookup, …)"},
	RuleBinReverseShell: {ID: "binary.reverse_shell", Category: CatCommandControl, Score: 50,
		Description: "risky binary run: raw socket tool usable as a reverse shell (nc, ncat, socat, …)"},
	RuleBinStaging: {ID: "binary.staging", Category: CatCollection, Score: 20,
		Description: "risky binary run: archiver or compressor used to stage data (tar, zip, …)"},
	RuleBinLateral: {ID: "binary.lateral_movement", Category: CatLateralMovement, Score: 40,
		Description: "risky binary run: remote login or copy (ssh, scp, …)"},
	RuleBinPermission: {ID: "binary.permission", Category: CatDefenseEvasion, Score: 10,
		Description: "risky binary run: permission change (chmod, chown, …)"},
	RuleBinOther: {ID: "binary.other", Category: CatExecution, Score: 20,
		Description: "binary listed in risky_binaries that fits none of the classes above"},

	RuleArgvCurlUpload: {ID: "argv.curl_upload", Category: CatExfiltration, Score: 60,
		Description: "curl uploads data: -d/--data @file, --data-binary, -T/--upload-file, -F/--form, --json @file"},
	RuleArgvWgetPostFile: {ID: "argv.wget_post_file", Category: CatExfiltration, Score: 60,
		Description: "wget uploads a file: --post-file or --body-file"},
	RuleArgvNetcatExec: {ID: "argv.netcat_exec", Category: CatExecution, Score: 95,
		Description: "netcat-style tool wires a program to a socket: nc -e/-c, ncat --exec/--sh-exec, socat exec:"},
	RuleArgvDevTCP: {ID: "argv.dev_tcp", Category: CatExecution, Score: 95,
		Description: "shell redirection to /dev/tcp or /dev/udp (bash -i >& /dev/tcp/host/port)"},
	RuleArgvChmodExec: {ID: "argv.chmod_exec", Category: CatExecution, Score: 30,
		Description: "chmod makes a file executable (+x, u+x, or an octal mode with an x bit)"},
	RuleArgvEncodeSensitive: {ID: "argv.encode_sensitive", Category: CatCollection, Score: 75,
		Description: "encoder (base64, xxd, …) run on a sensitive path"},
	RuleArgvArchiveSensitive: {ID: "argv.archive_sensitive", Category: CatCollection, Score: 75,
		Description: "archiver (tar, zip, …) run on a sensitive path or a directory holding one"},

	RuleArgvUploadSensitive: {ID: "argv.upload_sensitive", Category: CatExfiltration, Score: 85,
		Description: "upload or copy command whose arguments name a sensitive file (curl -T/-d @/-F, wget --post-file, scp, rsync, sftp): the file leaving, scored at exec"},

	RuleNetNotAllowed: {ID: "net.destination_not_allowed", Category: CatExfiltration, Score: 40,
		Description: "connect to a destination not in allowed_destinations (loopback included)"},
	RuleNetUnresolvedIP: {ID: "net.unresolved_ip", Category: CatCommandControl, Score: 45,
		Description: "connect to an IP address that no DNS answer in the session produced"},
	RuleNetNonStandardPort: {ID: "net.non_standard_port", Category: CatCommandControl, Score: 30,
		Description: "connect to a port not in standard_ports (default 80, 443)"},
	RuleNetManyDestinations: {ID: "net.many_destinations", Category: CatDiscovery, Score: 50,
		Description: "connect to a new destination after more than max_unique_destinations in one session"},

	RuleDNSNotAllowed: {ID: "dns.name_not_allowed", Category: CatCommandControl, Score: 15,
		Description: "DNS query for a name not in allowed_destinations"},
	RuleDNSLongLabel: {ID: "dns.long_label", Category: CatExfiltration, Score: 60,
		Description: "DNS query with a label longer than dns.max_label_length (tunnelling)"},
	RuleDNSHighEntropy: {ID: "dns.high_entropy_label", Category: CatExfiltration, Score: 60,
		Description: "DNS query with a high-entropy label (tunnelling)"},
	RuleDNSForeignResolver: {ID: "dns.foreign_resolver", Category: CatDefenseEvasion, Score: 50,
		Description: "DNS query sent to a resolver other than the system's"},

	RuleDNSTunnel: {ID: "dns.tunnel", Category: CatExfiltration, Score: 80,
		Description: "DNS query whose label is both longer than dns.max_label_length and high-entropy: data carried in the name"},

	RuleChainExfiltration: {ID: "chain.exfiltration", Category: CatExfiltration, Score: 95,
		Description: "sensitive read, then encoding or staging, then egress, within chain_window in one session; or a sensitive read and an egress by one process within chain_window, in either order"},
	RuleChainDownloadExec: {ID: "chain.download_exec", Category: CatExecution, Score: 75,
		Description: "a file written by a transfer tool in this session is made executable or run"},

	RuleEnforceDenied: {ID: "enforce.denied", Category: CatEnforcement, Score: 80,
		Description: "the receiver denied an operation (a denial is at least high)"},
	RuleEnforceAction: {ID: "enforce.action", Category: CatEnforcement, Score: 40,
		Description: "the receiver took an enforcement action other than a denial (e.g. audit)"},

	RuleFilePersistence: {ID: "file.persistence", Category: CatPersistence, Score: 75,
		Description: "a file that runs code at login, at a schedule or on a git action is opened for writing: shell rc and profile files, ~/.ssh/authorized_keys and ~/.ssh/rc, crontabs, systemd units, git hooks, XDG autostart entries, /etc/ld.so.preload; reads are not scored"},

	RuleFileProcessSecrets: {ID: "file.process_secrets", Category: CatCredentialAccess, Score: 80,
		Description: "another process's environment or memory opened: /proc/<pid>/environ or /proc/<pid>/mem (also under task/<tid>/) of a pid other than the opener's; /proc/self and the rest of /proc are not scored"},
	RuleExecFileless: {ID: "exec.fileless", Category: CatDefenseEvasion, Score: 80,
		Description: "a program runs from no file on disk: a memfd or a deleted file (agent.process.fileless)"},
	RuleExecLoader: {ID: "exec.loader", Category: CatDefenseEvasion, Score: 50,
		Description: "the dynamic loader is run as a command to start a program (ld-linux-x86-64.so.2 /usr/bin/curl …); the binary and argv rules judge the program it loads"},
	RuleFlowEncodeSensitive: {ID: "flow.encode_sensitive", Category: CatCollection, Score: 75,
		Description: "a sensitive file read by one process of a pipeline and an encoder or archiver in the same pipeline, within chain_window (cat ~/.aws/credentials | base64)"},
	RuleFileSensitiveAlias: {ID: "file.sensitive_alias", Category: CatCredentialAccess, Score: 70,
		Description: "a sensitive file gets another name: a link, rename or bind mount of a sensitive file (or of a directory holding one); the source's own file.* rules apply too"},
	RuleFileSensitiveChange: {ID: "file.sensitive_change", Category: CatDefenseEvasion, Score: 40,
		Description: "a sensitive or persistence file is deleted or its mode changed"},
	RuleFileChmodExec: {ID: "file.chmod_exec", Category: CatExecution, Score: 30,
		Description: "a file this session created is made executable (chmod syscall adding an x bit)"},

	RuleNetEgressVolume: {ID: "net.egress_volume", Category: CatExfiltration, Score: 60,
		Description: "a TCP connection to a destination not in allowed_destinations carried at least egress_volume_bytes out (agent.net.close's agent.net.sent_bytes)"},

	RuleLLMSecretToModel: {ID: "llm.secret_to_model", Category: CatExfiltration, Score: 85,
		Description: "an LLM request sent a secret to the model provider: a key- or token-shaped string, a private key, or a sensitive file's content, plain or encoded (agent.secret.*)"},
}

// BuiltinRules returns a copy of the built-in catalogue with default scores.
func BuiltinRules() []Rule {
	out := make([]Rule, numBuiltin)
	for i, r := range builtinRules {
		r.Enabled = true
		out[i] = r
	}
	return out
}

// RuleSet is a set of rule indices.
type RuleSet [MaxRules / 64]uint64

// Add puts rule i into the set.
func (s *RuleSet) Add(i int) { s[i>>6] |= 1 << (uint(i) & 63) }

// Has reports whether rule i is in the set.
func (s *RuleSet) Has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }

// Empty reports whether the set has no rules.
func (s *RuleSet) Empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

// Union adds every rule of o.
func (s *RuleSet) Union(o *RuleSet) {
	for i := range s {
		s[i] |= o[i]
	}
}

// Intersect keeps only the rules also in o.
func (s *RuleSet) Intersect(o *RuleSet) {
	for i := range s {
		s[i] &= o[i]
	}
}

// Each calls fn for every rule index in ascending order.
func (s *RuleSet) Each(fn func(int)) {
	for w, word := range s {
		for word != 0 {
			b := word & -word
			i := w*64 + bits.TrailingZeros64(b)
			fn(i)
			word &^= b
		}
	}
}
