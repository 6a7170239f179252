import Foundation

// MARK: - Built-in templates
//
// Every string below is copied from the source named beside it; compatibility with models trained
// elsewhere depends on them byte for byte. The tests pin each rendered prompt.

extension PromptTemplate {
    /// The built-ins, in the order `builtinNames` lists them.
    public static let builtins: [PromptTemplate] = [alpaca, alpacaJudge, llama2Chat, chatML, vicuna, raw]

    // MARK: Alpaca

    /// Alpaca-LoRA's `templates/alpaca.json` (tloen/alpaca-lora @ 8bb8579; identical in CUT's
    /// `templates/alpaca.json`), methods.md §3.1.
    static let alpacaPromptInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
    static let alpacaPromptNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    /// CUT's `prompt_no_input_judge` (wwxu21/CUT `templates/alpaca.json`), methods.md §1.3.
    static let alpacaPromptJudge = "Below is an instruction that describes a task. Write a response to the instruction and the response should match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n### Judgment:\n{judgment}\n\n### Response:\n"

    /// Single turn: Alpaca-LoRA's strings (`prompt_input` when the input is non-empty). Conversations:
    /// FastChat's `alpaca` conversation template (lm-sys/FastChat `fastchat/conversation.py` @ 0e6d3e4,
    /// `SeparatorStyle.ADD_COLON_TWO`, sep "\n\n", sep2 "</s>"):
    ///     {system}\n\n### Instruction: {u1}\n\n### Response: {a1}</s>### Instruction: {u2}\n\n### Response:
    /// Note FastChat writes "### Instruction: text" on one line, unlike Alpaca-LoRA's "### Instruction:\ntext".
    /// Stop string "\n### Instruction:": a model that runs past its answer usually starts a new instruction.
    public static let alpaca = PromptTemplate(
        name: "alpaca",
        description: "Alpaca-LoRA's template (tloen/alpaca-lora templates/alpaca.json); chat turns as FastChat's 'alpaca'.",
        promptInput: alpacaPromptInput,
        promptNoInput: alpacaPromptNoInput,
        responseSplit: "### Response:",
        system: "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
        systemSuffix: "\n\n",
        userPrefix: "### Instruction: ",
        userSuffix: "\n\n",
        assistantPrefix: "### Response: ",
        assistantSuffix: "</s>",
        replyPrefix: "### Response:",
        stopStrings: ["\n### Instruction:"])

    /// CUT's judgment template (methods.md §1.2–1.3): `prompt(instruction:input:judgment:)` renders
    /// `prompt_no_input_judge`; without a judgment, `prompt_no_input`. As in CUT's finetune_unlikelihood.py
    /// a non-empty input is appended to the instruction with "\n" (CUT never uses `prompt_input`).
    /// Conversations as `alpaca`.
    public static let alpacaJudge: PromptTemplate = {
        var template = alpaca
        template.name = "alpaca_judge"
        template.description = "CUT's alpaca template with prompt_no_input_judge (wwxu21/CUT templates/alpaca.json); input joined to the instruction with \\n."
        template.promptInput = nil
        template.promptJudge = alpacaPromptJudge
        template.inputSeparator = "\n"
        return template
    }()

    // MARK: Llama 2 chat

    /// Meta's Llama-2 chat format as the `chat_template` of meta-llama/Llama-2-7b-chat-hf (and Meta's
    /// `llama/generation.py` `chat_completion`): `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{u1} [/INST] {a1} </s><s>[INST] {u2} [/INST]`,
    /// each message `.strip()`ped (the system block with the first user message). The first `<s>` is the
    /// tokenizer's BOS; the later `</s><s>` are written in the text and become EOS/BOS ids when tokenized.
    /// No default system prompt (the HF template's `use_default_system_prompt` is false since 2023-11).
    public static let llama2Chat = PromptTemplate(
        name: "llama2-chat",
        description: "Llama-2 chat ([INST] <<SYS>> ... [/INST]), as meta-llama/Llama-2-7b-chat-hf's chat_template.",
        systemPrefix: "<<SYS>>\n",
        systemSuffix: "\n<</SYS>>\n\n",
        systemPlacement: .firstUserMessage,
        userPrefix: "[INST] ",
        userSuffix: " [/INST]",
        assistantPrefix: " ",
        assistantSuffix: " </s><s>",
        replyPrefix: "",
        stripsContent: true,
        stopStrings: ["[INST]"])

    // MARK: ChatML

    /// ChatML (OpenAI's format as used by Qwen, OpenHermes, ...): the common HF `chat_template`
    /// `'<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n'`, reply opened with
    /// `<|im_start|>assistant\n` (add_generation_prompt). No default system: Qwen2-Instruct's own
    /// template adds "You are a helpful assistant." when none is given; pass it as `system` to match.
    public static let chatML = PromptTemplate(
        name: "chatml",
        description: "ChatML (<|im_start|>role\\n...<|im_end|>\\n).",
        systemPrefix: "<|im_start|>system\n",
        systemSuffix: "<|im_end|>\n",
        userPrefix: "<|im_start|>user\n",
        userSuffix: "<|im_end|>\n",
        assistantPrefix: "<|im_start|>assistant\n",
        assistantSuffix: "<|im_end|>\n",
        replyPrefix: "<|im_start|>assistant\n",
        stopStrings: ["<|im_end|>", "<|im_start|>"],
        endTokens: ["<|im_end|>"])

    // MARK: Vicuna

    /// Vicuna v1.1: FastChat's `vicuna_v1.1` (`fastchat/conversation.py` @ 0e6d3e4, ADD_COLON_TWO, sep " ",
    /// sep2 "</s>"): `{system} USER: {u1} ASSISTANT: {a1}</s>USER: {u2} ASSISTANT:`.
    /// Stop strings " USER:" / "\nUSER:": where a model that skips its EOS starts the next user turn.
    public static let vicuna = PromptTemplate(
        name: "vicuna",
        description: "Vicuna v1.1 (FastChat's vicuna_v1.1).",
        system: "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
        systemSuffix: " ",
        userPrefix: "USER: ",
        userSuffix: " ",
        assistantPrefix: "ASSISTANT: ",
        assistantSuffix: "</s>",
        replyPrefix: "ASSISTANT:",
        stopStrings: [" USER:", "\nUSER:"])

    // MARK: Raw

    /// No decoration: the instruction (and input, after "\n") as given; a conversation is the messages'
    /// texts concatenated. For base models and prompts formatted by the caller.
    public static let raw = PromptTemplate(
        name: "raw",
        description: "The prompt as given, no decoration.")
}
