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
