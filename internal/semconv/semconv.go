// Package semconv holds the telemetry contract of agentwatch: the event names
// and attribute keys that agent_session emits and agent_score reads and
// writes. The names are fixed by DESIGN.md; OpenTelemetry semantic
// conventions are used wherever one exists, agent.* only where none does.
package semconv

// Event names (LogRecord attribute "event.name").
const (
	EventSessionStart = "agent.session.start"
	EventSessionEnd   = "agent.session.end"
	EventProcessExec  = "agent.process.exec"
	EventProcessExit  = "agent.process.exit"
	EventFileOpen     = "agent.file.open"
	EventNetConnect   = "agent.net.connect"
	EventDNSQuery     = "agent.dns.query"
	EventLLMRequest   = "agent.llm.request"
	EventLLMResponse  = "agent.llm.response"
	EventEnforce      = "agent.enforce.action"
)

// Attribute keys.
const (
	EventName = "event.name"

	ServiceName = "service.name"
	HostName    = "host.name"
	SessionID   = "session.id"

	GenAIAgentName         = "gen_ai.agent.name"
	GenAIOperationName     = "gen_ai.operation.name"
	GenAIProviderName      = "gen_ai.provider.name"
	GenAIRequestModel      = "gen_ai.request.model"
	GenAIResponseModel     = "gen_ai.response.model"
	GenAIUsageInputTokens  = "gen_ai.usage.input_tokens"
	GenAIUsageOutputTokens = "gen_ai.usage.output_tokens"
	GenAIToolName          = "gen_ai.tool.name"
	GenAIToolCallID        = "gen_ai.tool.call.id"
	GenAIFinishReasons     = "gen_ai.response.finish_reasons"

	ProcessPID              = "process.pid"
	ProcessParentPID        = "process.parent_pid"
	ProcessExecutablePath   = "process.executable.path"
	ProcessExecutableName   = "process.executable.name"
	ProcessCommandArgs      = "process.command_args"
	ProcessWorkingDirectory = "process.working_directory"
	ProcessUserID           = "process.user.id"
	ProcessExitCode         = "process.exit.code"
	ErrorType               = "error.type"

	FilePath = "file.path"

	NetworkPeerAddress = "network.peer.address"
	NetworkPeerPort    = "network.peer.port"
	NetworkTransport   = "network.transport"
	NetworkType        = "network.type"
	ServerAddress      = "server.address"
	ServerPort         = "server.port"

	DNSQuestionName = "dns.question.name"
	DNSQuestionType = "dns.question.type"
	DNSAnswers      = "dns.answers"

	SecurityRuleName     = "security_rule.name"
	SecurityRuleCategory = "security_rule.category"
)

// agentwatch-specific attribute keys, for facts no semantic convention names.
const (
	FileFlags  = "agent.file.flags"
	FileResult = "agent.file.result" // fd or -errno of the open
	Hook       = "agent.hook"        // kernel hook that saw the event, e.g. "tracepoint/syscalls/sys_exit_openat"

	ArgsTruncated = "agent.process.args_truncated"
	// PathTruncated is true when the kernel cut a path of the event (the
	// file path; on exec the executable path or working directory).
	PathTruncated = "agent.path.truncated"
	ExitSignal    = "agent.process.exit.signal"

	ConnectResult = "agent.net.result" // 0, or -errno (-115 EINPROGRESS for a non-blocking connect)
	// PeerResolved is true when a DNS answer seen in the session produced the
	// peer address; false when the session never resolved it.
	PeerResolved = "agent.net.peer_resolved"

	DNSResolver = "agent.dns.resolver"

	RiskScore = "agent.risk.score"
	RiskLevel = "agent.risk.level"
	RiskRules = "agent.risk.rules"
	Alert     = "agent.alert"

	// Rollups on process and session spans.
	RiskAlertCount = "agent.risk.alert_count"

	EnforceRule   = "agent.enforce.rule"
	EnforceAction = "agent.enforce.action"
)

// Risk levels, in ascending order.
const (
	LevelNone     = "none"
	LevelLow      = "low"
	LevelMedium   = "medium"
	LevelHigh     = "high"
	LevelCritical = "critical"
)

// gen_ai.operation.name values (GenAI semantic conventions) of the spans and
// LLM events.
const (
	GenAIOpInvokeAgent = "invoke_agent"
	GenAIOpChat        = "chat"
	GenAIOpExecuteTool = "execute_tool"
)

// Intent layer (DNS and TLS plaintext) attribute keys.
const (
	// DNSResolverIsSystem is false when a query went to a resolver that
	// /etc/resolv.conf (or systemd-resolved's upstream list) does not name.
	DNSResolverIsSystem = "agent.dns.resolver_is_system"
	DNSResponseCode     = "agent.dns.rcode"    // "NOERROR", "NXDOMAIN", ...
	DNSAnswered         = "agent.dns.answered" // false: no response in time (or never matched)

	GenAIResponseID        = "gen_ai.response.id"
	GenAIRequestMaxTokens  = "gen_ai.request.max_tokens"
	HTTPResponseStatusCode = "http.response.status_code"
	UserAgentOriginal      = "user_agent.original"
	// HTTPRequestHeaderPrefix + lower-case name: request headers, redacted
	// (full capture only).
	HTTPRequestHeaderPrefix = "http.request.header."

	LLMAPI          = "agent.llm.api"           // wire format, e.g. "anthropic.messages"
	LLMTools        = "agent.llm.tools"         // names of the tools offered to the model
	LLMToolCalls    = "agent.llm.tool_calls"    // names of the tools the model called
	LLMMessages     = "agent.llm.messages"      // messages in the conversation sent
	LLMPromptBytes  = "agent.llm.prompt_bytes"  // size of the last user prompt
	LLMPrompt       = "agent.llm.prompt"        // last user prompt, redacted (full capture)
	LLMResponseText = "agent.llm.response_text" // response text, redacted (full capture)
	LLMPartial      = "agent.llm.partial"       // a body was cut by the capture or lost bytes
)

// Homes, identity of the destination, record budget, intent linkage and
// secrets sent to a model provider.
const (
	// ProcessEnvHome is HOME as of the process's exec (the semantic
	// conventions' opt-in process.environment_variable.<key>).
	ProcessEnvHome = "process.environment_variable.HOME"
	// UserHome is the home of process.user.id as the /etc/passwd under the
	// process's own root says (its mount namespace may have its own).
	UserHome = "agent.user.home"

	// FileOpenCount is how many identical opens (same process, path, flags
	// and result) inside the dedup window this one record stands for.
	FileOpenCount = "agent.file.open_count"

	// PeerNameSource says where server.address of a connect came from:
	// "dns", "hosts" (/etc/hosts under the process's root), "argv"
	// (--resolve-style pinning), "tls" (SNI or Host of the connection).
	PeerNameSource = "agent.net.peer_name_source"

	// Tool call arguments and result (GenAI semantic conventions, opt-in:
	// full capture only), redacted.
	GenAIToolCallArguments = "gen_ai.tool.call.arguments"
	GenAIToolCallResult    = "gen_ai.tool.call.result"

	// Secrets found in what a request sent to a model provider. The secret
	// itself is never exported: only what kind it was, how it was encoded,
	// which sensitive file's content it matched and which tool call's
	// result carried it.
	SecretCount      = "agent.secret.count"
	SecretKinds      = "agent.secret.kinds"     // e.g. "aws_secret_access_key", "private_key", "file_content"
	SecretEncodings  = "agent.secret.encodings" // "plain", "base64", "hex"
	SecretFiles      = "agent.secret.files"     // sensitive files whose content was sent
	SecretToolCallID = "agent.secret.tool_call.id"
	SecretToolName   = "agent.secret.tool.name"
)

// What a file is and what ran (identity, file changes, fileless and loaded
// programs, pipes).
const (
	// Changes of files by session processes, with the same identity as
	// opens. file.path is the file changed (the source of a link, rename or
	// bind mount); FileNewPath the name it gets (link, rename) and
	// FileMountPoint where a mount puts it.
	EventFileLink   = "agent.file.link"
	EventFileRename = "agent.file.rename"
	EventFileUnlink = "agent.file.unlink"
	EventFileChmod  = "agent.file.chmod"
	EventFileMount  = "agent.file.mount"

	FileInode = "file.inode" // semantic conventions: the file's inode number
	FileMode  = "file.mode"  // semantic conventions: octal string, e.g. "0755"
	// FileDevice is the device number of the file's filesystem, as stat's
	// st_dev reports it; with file.inode, the file's identity.
	FileDevice = "agent.file.device"
	// FileCanonicalPath is the sensitive file an open or change reached
	// under another name (hard link, rename, bind mount, another mount
	// namespace, a handle): the path the receiver knows that inode by.
	FileCanonicalPath = "agent.file.canonical_path"
	FileNewPath       = "agent.file.new_path"
	FileMountPoint    = "agent.file.mount_point"
	FileMountFlags    = "agent.file.mount_flags" // MS_* names, e.g. "MS_BIND|MS_REC"
	// FileProcTargetPID is the process whose /proc/<pid>/environ or mem a
	// session process opened (never its own: those are noise).
	FileProcTargetPID = "agent.file.proc_target_pid"

	// ProcessFileless is true when the image runs from no file on disk: a
	// memfd or a deleted file (process.executable.path then ends in
	// " (deleted)", as /proc/<pid>/exe reads).
	ProcessFileless = "agent.process.fileless"
	// ProcessProgram is the program a dynamic loader run as a command
	// (ld-linux-x86-64.so.2 /usr/bin/curl …) was asked to load; the
	// risky-binary rules read it as the executable.
	ProcessProgram = "agent.process.program"
	// ProcessStdinPipe and ProcessStdoutPipe are the inode numbers of the
	// pipes on fd 0 and 1 at exec: processes that share one are one flow.
	ProcessStdinPipe  = "agent.process.stdin_pipe"
	ProcessStdoutPipe = "agent.process.stdout_pipe"
)

// How each TCP connection a session process connected ended (the
// receiver's agent.net.close). The destination attributes are those of
// agent.net.connect; error.type is the errno name when an error ended it.
const (
	EventNetClose = "agent.net.close"

	// NetOutcome is how the connection ended: NetOutcome* below.
	NetOutcome = "agent.net.outcome"
	// NetEstablished is true when the handshake completed.
	NetEstablished = "agent.net.established"
	// NetSentBytes are the payload bytes the process wrote to the
	// connection; NetAckedBytes those of them the peer acknowledged by the
	// record's time (the rest were in flight or queued); NetReceivedBytes
	// the payload bytes that came from the peer.
	NetSentBytes     = "agent.net.sent_bytes"
	NetAckedBytes    = "agent.net.acked_bytes"
	NetReceivedBytes = "agent.net.received_bytes"
	// NetDuration is the time from the connect to the record, in seconds
	// (a double, as OpenTelemetry measures durations).
	NetDuration = "agent.net.duration"
)

// agent.net.outcome values.
const (
	NetOutcomeClosed  = "closed"  // established, then closed without an error
	NetOutcomeReset   = "reset"   // established, then reset by the peer
	NetOutcomeTimeout = "timeout" // the connect, or the established connection, timed out
	NetOutcomeRefused = "refused" // the peer refused the connect (RST to the SYN)
	NetOutcomeAborted = "aborted" // the process closed the socket before the connect completed
	NetOutcomeError   = "error"   // another error (error.type names it, e.g. EHOSTUNREACH)
)
