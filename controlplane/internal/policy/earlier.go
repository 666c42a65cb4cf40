package policy

// The earlier system's class paths. Every class path it shipped (in any
// version, its presets included) either loads here, through a class's
// Aliases or Legacy, or is refused with the reason it has no counterpart;
// earlier_test.go checks both lists against the class paths recorded in
// testdata/earlier_classes.txt.

// earlier prefixes a module path of the earlier system's policies.
const earlier = "luthien_proxy.policies."

// earlierV2 prefixes a module path of the earlier system's second
// generation of policies.
const earlierV2 = "luthien_proxy.v2.policies."

// simpleLLMDefaults are the earlier simple LLM policy's defaults where they
// differ from llm_judge's: a judge failure lets content through with a
// warning there, while llm_judge blocks unless told otherwise.
var simpleLLMDefaults = map[string]any{"on_error": onErrorPass}

// presetModel is the judge model of the earlier system's presets.
const presetModel = "claude-haiku-4-5"

// llmPreset returns the Legacy of an earlier preset: llm_judge with fixed
// instructions and error handling. A configuration may still override any
// key (the model or api_key_env, say); the earlier presets took none.
//
// The earlier presets judged with the calling user's own credential. Here
// a judge's credential is always the operator's (JudgeAccess): a client's
// key is never sent anywhere but to the provider the client called.
func llmPreset(module, class, onError, instructions string) Legacy {
	return Legacy{
		Name: earlier + "presets." + module + ":" + class,
		Defaults: map[string]any{
			"instructions": instructions,
			"model":        presetModel,
			"temperature":  0.0,
			"max_tokens":   4096.0,
			"on_error":     onError,
		},
	}
}

// llmPresets are the earlier system's presets, all llm_judge policies.
// The instructions are ours, written to the presets' stated aims.
var llmPresets = []Legacy{
	llmPreset("block_dangerous_commands", "BlockDangerousCommandsPolicy", onErrorBlock,
		"Block tool calls that would run a destructive shell command: recursive deletion of broad paths (rm -rf / or ~), "+
			"world-writable permissions (chmod 777, chmod -R 777), formatting or wiping disks (mkfs, dd if=, fdisk, parted, shred, wipefs, "+
			"writing to /dev/sd*), fork bombs and the like. Replace such a call with a text block saying "+
			"\"[BLOCKED] Dangerous command detected: <command>. This command was blocked by the safety policy.\" "+
			"Text that only mentions or explains these commands passes, and so does every safe tool call."),
	llmPreset("block_web_requests", "BlockWebRequestsPolicy", onErrorBlock,
		"Block tool calls that would make an outbound network request: curl, wget, httpie, nc/ncat/socat, telnet, ssh, scp, "+
			"rsync to a remote host, python or node one-liners that fetch a URL, or anything else that sends data to an external address. "+
			"Replace such a call with a text block saying \"[BLOCKED] Network request detected: <command>. Outbound network requests "+
			"are blocked by the safety policy.\" Text that only discusses these commands passes."),
	llmPreset("block_sensitive_file_writes", "BlockSensitiveFileWritesPolicy", onErrorBlock,
		"Block tool calls that write to a sensitive path: system directories (/etc, /usr, /boot, /sys, /proc, /root), "+
			"credential stores (~/.ssh, ~/.gnupg, ~/.aws, ~/.config/gcloud, ~/.kube, ~/.docker), and files such as *.pem, *.key, *.crt, "+
			"id_rsa, id_ed25519, authorized_keys, known_hosts, shadow, passwd or sudoers, whether by a write or edit tool, tee or a shell "+
			"redirect. Reading them is allowed. Replace such a call with a text block saying \"[BLOCKED] Write to sensitive path detected: "+
			"<path>. Writes to system and security files are blocked by the safety policy.\" Text that only discusses these paths passes."),
	llmPreset("no_yapping", "NoYappingPolicy", onErrorPass,
		"Make text concise: drop opening pleasantries (\"Certainly!\", \"Great question!\"), preambles announcing what comes next, "+
			"stacked hedges (keep one where the uncertainty is real) and closing offers of more help. Keep every piece of substance. "+
			"Leave tool calls alone; text that is already concise passes."),
	llmPreset("no_apologies", "NoApologiesPolicy", onErrorPass,
		"Remove apologies from text: a sentence that only apologizes goes; a useful sentence that carries an apology is rewritten "+
			"without it, keeping what it says. Leave tool calls alone; text without apologies passes."),
	llmPreset("plain_dashes", "PlainDashesPolicy", onErrorPass,
		"Replace every em dash (\u2014) and en dash (\u2013) in text with a plain hyphen (-), changing nothing else. "+
			"Text without them passes."),
	llmPreset("prefer_uv", "PreferUvPolicy", onErrorPass,
		"Where text or a tool call uses pip (pip install, pip freeze, pip uninstall, pip list, pip show, python -m pip), "+
			"write the uv equivalent instead (uv pip install, uv pip freeze, and so on), in explanations too. "+
			"Anything without pip passes."),
	llmPreset("deai", "DeAIPolicy", onErrorPass,
		"Rewrite text so that it reads as plainly written by a person, keeping its meaning, order and every technical detail, "+
			"code block, figure and claim exactly. Remove inflated significance, promotional adjectives, stock vocabulary "+
			"(delve, tapestry, testament, pivotal, leverage, seamless and the like), \"serves as\" where \"is\" will do, "+
			"forced groups of three, not-only-but-also constructions, vague attributions, filler (\"it is worth noting that\"), "+
			"chatbot openers and closers, and em-dash overuse. Add nothing. Leave tool calls alone; text that already reads "+
			"naturally passes."),
}

// unported are the earlier class paths with no counterpart here, with the
// reason, so that loading one says why instead of "unknown class".
var unported = map[string]string{
	earlier + "simple_policy:SimplePolicy":                                          "a base class to subclass in Python, not a policy",
	earlier + "anthropic.simple_policy:AnthropicSimplePolicy":                       "a base class to subclass in Python, not a policy",
	earlier + "simple_judge_policy:SimpleJudgePolicy":                               "a base class whose rules are set by subclassing; use llm_judge with those rules as its instructions",
	earlier + "anthropic.simple_judge:AnthropicSimpleJudgePolicy":                   "a base class whose rules are set by subclassing; use llm_judge with those rules as its instructions",
	earlierV2 + "simple_policy:SimplePolicy":                                        "a base class to subclass in Python, not a policy",
	earlier + "tool_call_buffer:ToolCallBufferPolicy":                               "a base class of the first generation, not a policy",
	earlierV2 + "simple_string_replacement:SimpleStringReplacementPolicy":           "its replacements are a mapping, whose order a YAML mapping does not keep; write them as [from, to] pairs of string_replacement",
	earlierV2 + "simple_blocked_content:SimpleBlockedContentPolicy":                 "it blocks text as well as tool calls; regex_block covers its tool calls",
	earlierV2 + "simple_tool_filter_example:SimpleToolFilterPolicy":                 "an example; regex_block filters tool calls",
	earlierV2 + "uppercase_nth_word:UppercaseNthWordPolicy":                         "a demonstration policy",
	earlierV2 + "event_driven_uppercase_nth_word:EventDrivenUppercaseNthWordPolicy": "a demonstration policy",
	earlier + "streaming_separator:StreamingSeparatorPolicy":                        "a demonstration policy",
	earlier + "demo_force_bash_rmrf_policy:DemoForceBashRmRfPolicy":                 "a demonstration policy",
	earlier + "hackathon_policy_template:HackathonPolicy":                           "a template to copy and edit in Python",
	earlier + "hackathon_onboarding_policy:HackathonOnboardingPolicy":               "an onboarding banner of the earlier system",
	earlier + "onboarding_policy:OnboardingPolicy":                                  "an onboarding banner of the earlier system",
	earlier + "luthien_indicator_policy:LuthienIndicatorPolicy":                     "a banner of the earlier system",
	earlier + "conversation_link_policy:ConversationLinkPolicy":                     "it links to the earlier system's conversation viewer; the call view at /calls/{id} serves that purpose here",
	earlier + "conversation_logger:ConversationLoggingPolicy":                       "every call is recorded here without a policy",
	earlier + "sample_pydantic_policy:SamplePydanticPolicy":                         "an example of the earlier configuration system",
	earlier + "multi_parallel_policy:MultiParallelPolicy":                           "parallel composition is not supported; chain policies with serial",
	earlier + "parallel_rules_policy:ParallelRulesPolicy":                           "parallel composition is not supported; chain llm_judge policies with serial",
	earlier + "multi_backend_policy:MultiBackendPolicy":                             "it calls several models per request; model routing is not a policy here",
	earlier + "claude_md_rules_policy:ClaudeMdRulesPolicy":                          "it reads rules from the client's project files, which the gateway does not see",
	earlier + "deai_policy:DeAIPolicy":                                              "use the preset " + earlier + "presets.deai:DeAIPolicy",
	earlier + "deslop_policy:DeSlop":                                                "use the preset " + earlier + "presets.deai:DeAIPolicy",
	earlier + "deslopify_policy:DeslopifyPolicy":                                    "use the preset " + earlier + "presets.deai:DeAIPolicy",
	earlier + "humanizer_policy:HumanizerPolicy":                                    "use the preset " + earlier + "presets.deai:DeAIPolicy",
	earlier + "pip_block_policy:PipBlockPolicy":                                     "use regex_block with a pattern such as \\bpip3?\\s+install",
	earlier + "supply_chain_advisory_policy:SupplyChainAdvisoryPolicy":              "it needs the earlier system's package advisory feed",
	earlier + "supply_chain_blocklist_policy:SupplyChainBlocklistPolicy":            "it needs the earlier system's package blocklist database",
	earlier + "supply_chain_feed_policy:SupplyChainFeedPolicy":                      "it needs the earlier system's package advisory feed",
	earlier + "supply_chain_gate_policy:SupplyChainGatePolicy":                      "it needs the earlier system's package advisory feed",
	earlier + "supply_chain_guard_policy:SupplyChainGuardPolicy":                    "it needs the earlier system's package advisory feed",
}

// dogfoodSafety is the earlier dogfood safety policy: regex_block over
// shell tools with the earlier keys, patterns and notice. Its patterns
// keep the proxy's own infrastructure from being torn down by the agent
// that runs through it.
var dogfoodSafety = Legacy{
	Name:    earlier + "dogfood_safety_policy:DogfoodSafetyPolicy",
	Renames: map[string]string{"blocked_patterns": "patterns", "blocked_message": "message"},
	Defaults: map[string]any{
		"patterns": []any{
			`docker\s+compose\s+(down|stop|rm|kill)`,
			`docker-compose\s+(down|stop|rm|kill)`,
			`docker\s+(stop|kill|rm)\s`,
			`pkill\s+.*(uvicorn|python|luthien|gateway)`,
			`killall\s+.*(uvicorn|python|luthien)`,
			`rm\s+(-[a-zA-Z]*f[a-zA-Z]*\s+)?(\.env|docker-compose|src/luthien)`,
			`docker\s+compose\s+exec.*psql.*DROP\s`,
			`docker\s+compose\s+exec.*psql.*TRUNCATE\s`,
		},
		"tool_names": []any{"Bash", "bash", "shell", "terminal", "execute", "run_command"},
		"message": "⛔ BLOCKED by DogfoodSafetyPolicy: '{command}' would disrupt the Luthien proxy infrastructure. " +
			"Use a separate terminal for Docker/infrastructure commands while dogfooding.",
	},
}
