import Foundation
import Testing
@testable import HoneKit

/// `hone eval`'s tasks against lm-evaluation-harness itself (tools/oracle/make_eval_fixtures.py): prompts, each
/// choice's log-likelihood (1e-3, f32) and is_greedy, per-document metrics and aggregated results with stderrs.
@Suite struct MultipleChoiceEvalTests {
    static let data = Repository.fixture("eval/data")

    struct Run {
        let tasks: [String]
        let fewShot: Int
        let limit: Int?
        let results: [String: [String: Any]]
        let documents: [String: [[String: Any]]]
        /// lm-eval's --apply_chat_template, --fewshot_as_multiturn, --system_instruction.
        var applyChatTemplate = false
        var fewShotAsMultiturn = false
        var systemInstruction: String?

        func format(_ loaded: LoadedModel) throws -> MultipleChoiceTask.PromptFormat {
            MultipleChoiceTask.PromptFormat(systemInstruction: systemInstruction,
                                            chatTemplate: applyChatTemplate ? try #require(try loaded.chatTemplate()) : nil,
                                            fewShotAsMultiturn: fewShotAsMultiturn)
        }
    }

    static func runs(_ name: String) throws -> [Run] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("eval/\(name).json")))) as! [String: Any]
        return (object["runs"] as! [[String: Any]]).map { run in
            Run(tasks: run["tasks"] as! [String], fewShot: (run["num_fewshot"] as! NSNumber).intValue,
                limit: (run["limit"] as? NSNumber)?.intValue, results: run["results"] as! [String: [String: Any]],
                documents: run["documents"] as! [String: [[String: Any]]],
                applyChatTemplate: (run["apply_chat_template"] as? Bool) ?? false,
                fewShotAsMultiturn: (run["fewshot_as_multiturn"] as? Bool) ?? false,
                systemInstruction: run["system_instruction"] as? String)
        }
    }

    /// Runs every fixture run with Hone and compares everything lm-eval recorded.
    func compare(model modelPath: String, adapter: String? = nil, fixture: String, data: String = Self.data) throws {
        let loaded = try LoadedModel.open(modelPath)
        if let adapter { try loaded.attachAdapter(directory: adapter) }
        let scorer = MultipleChoiceScorer(model: loaded.model, tokenizer: try loaded.tokenizer(), tokenBudget: 512)
        for run in try Self.runs(fixture) {
            let selection = try MultipleChoiceEvaluation.select(run.tasks.joined(separator: ","), numFewShot: run.fewShot)
            let tasks = try selection.leafTasks.map { try MultipleChoiceEvaluation.loadTask($0, directory: data) }
            let results = try MultipleChoiceEvaluation.run(tasks: tasks, fewShot: selection.fewShot, limit: run.limit.map(DocumentLimit.first),
                                                           scorer: scorer, format: try run.format(loaded))
            var worst = 0.0
            for result in results {
                let name = result.task.name
                let expected = try #require(run.documents[name], "\(name) missing in the fixture")
                #expect(result.requests.count == expected.count, "\(name)")
                for (index, document) in expected.enumerated() where index < result.requests.count {
                    let request = result.requests[index].unsplit
                    #expect(request.context == document["context"] as! String, "\(name) doc \(index) context (\(run.fewShot)-shot)")
                    #expect(request.continuations == document["continuations"] as! [String], "\(name) doc \(index) continuations")
                    let lls = (document["loglikelihoods"] as! [NSNumber]).map(\.doubleValue)
                    let greedy = (document["is_greedy"] as! [NSNumber]).map(\.boolValue)
                    let scores = result.scores[index]
                    #expect(scores.count == lls.count)
                    for (score, ll) in zip(scores, lls) {
                        worst = max(worst, abs(score.loglikelihood - ll))
                        #expect(abs(score.loglikelihood - ll) <= 1e-3, "\(name) doc \(index): \(score.loglikelihood) vs \(ll)")
                    }
                    #expect(scores.map(\.isGreedy) == greedy, "\(name) doc \(index) is_greedy")
                    for (metric, value) in document["metrics"] as! [String: NSNumber] {
                        #expect(abs((result.documentMetrics[index][metric] ?? .nan) - value.doubleValue) <= 1e-6,
                                "\(name) doc \(index) \(metric)")
                    }
                }
            }
            // Aggregates, including MMLU's size-weighted groups and lm-eval's stderrs ("N/A" for n = 1).
            let table = MultipleChoiceEvaluation.scores(results, groups: selection.groups)
            for (name, values) in run.results {
                for (key, value) in values where key.hasSuffix(",none") && !key.contains("_stderr") {
                    let metric = String(key.dropLast(",none".count))
                    let score = try #require(table[name]?[metric], "\(name) \(metric) not reported")
                    #expect(abs(score.value - (value as! NSNumber).doubleValue) <= 1e-6, "\(name) \(metric)")
                    let stderr = values["\(metric)_stderr,none"]
                    if let number = stderr as? NSNumber {
                        #expect(abs((score.stderr ?? .nan) - number.doubleValue) <= 1e-6, "\(name) \(metric) stderr")
                    } else {
                        #expect(score.stderr == nil, "\(name) \(metric) stderr should be N/A")
                    }
                }
            }
            print("\(fixture) \(run.tasks) \(run.fewShot)-shot: max |Δ loglikelihood| = \(worst)")
        }
    }

    @Test func tinyLlamaMatchesLMEval() throws {
        try compare(model: Repository.fixture("eval/tiny-llama"), fixture: "tiny-llama")
    }

    /// The same documents as Hugging Face `datasets` exports them (tools/oracle/make_eval_fixtures.py writes
    /// eval/data-hf: CONFIG/SPLIT.jsonl and SPLIT.jsonl names; MMLU as the "all" configuration's files, one folder
    /// per subject config, and SUBJECT_SPLIT.jsonl): everything lm-eval recorded, 0-, 3- and 5-shot.
    @Test func tinyLlamaMatchesLMEvalOnHuggingFaceExports() throws {
        try compare(model: Repository.fixture("eval/tiny-llama"), fixture: "tiny-llama", data: Repository.fixture("eval/data-hf"))
    }

    @Test func adapterMatchesLMEvalWithPEFT() throws {
        try compare(model: Repository.fixture("eval/tiny-llama"), adapter: Repository.fixture("eval/tiny-llama-adapter"),
                    fixture: "tiny-llama-adapter")
    }

    @Test func smolLM2MatchesLMEval() throws {
        let model = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct-f32").path
        guard FileManager.default.fileExists(atPath: model + "/model.safetensors"),
              FileManager.default.fileExists(atPath: Repository.fixture("eval/smollm2.json")) else {
            print("skipped: models/SmolLM2-135M-Instruct-f32 is absent (tools/oracle/make_eval_fixtures.py --smollm2 makes it)")
            return
        }
        try compare(model: model, fixture: "smollm2")
    }

    /// lm-eval's --apply_chat_template on the tiny model with a template that writes BOS (none is added on top) and
    /// rejects the system role (rendered again without it, so MMLU's description goes), 0- and 2-shot.
    @Test func tinyLlamaChatTemplateMatchesLMEval() throws {
        let model = try makeTemporaryDirectory().appendingPathComponent("tiny-llama-chat")
        try FileManager.default.copyItem(atPath: Repository.fixture("eval/tiny-llama"), toPath: model.path)
        try FileManager.default.copyItem(atPath: Repository.fixture("eval/tiny-llama-chat-template.jinja"),
                                         toPath: model.appendingPathComponent("chat_template.jinja").path)
        try compare(model: model.path, fixture: "tiny-llama-chat")
    }

    /// lm-eval's --apply_chat_template (few-shot as turns and as one message), --system_instruction, on SmolLM2's own
    /// template.
    @Test func smolLM2ChatTemplateMatchesLMEval() throws {
        let model = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct-f32").path
        guard FileManager.default.fileExists(atPath: model + "/model.safetensors") else {
            print("skipped: models/SmolLM2-135M-Instruct-f32 is absent (tools/oracle/make_eval_fixtures.py --smollm2 makes it)")
            return
        }
        try compare(model: model, fixture: "smollm2-chat")
    }

    /// The shipped Q4_1 GGUF, run in place with integer kernels (activations quantized to 8 bits), against lm-eval
    /// on the f32 weights dequantized from that same file: prompts identical (with the GGUF's chat template too),
    /// log-likelihoods close.
    @Test(arguments: ["smollm2", "smollm2-chat"])
    func quantizedGGUFIsCloseToLMEvalOnItsWeights(fixture: String) throws {
        let gguf = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: gguf), FileManager.default.fileExists(atPath: Repository.fixture("eval/\(fixture).json")) else {
            print("skipped: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model fetches it)")
            return
        }
        let loaded = try LoadedModel.open(gguf)
        let scorer = MultipleChoiceScorer(model: loaded.model, tokenizer: try loaded.tokenizer())
        // The plain fixture's first run; every run of the chat one.
        let runs = try Self.runs(fixture)
        var differences: [Double] = []
        for run in fixture == "smollm2" ? [runs[0]] : runs {
            let selection = try MultipleChoiceEvaluation.select(run.tasks.joined(separator: ","), numFewShot: run.fewShot)
            let tasks = try selection.leafTasks.map { try MultipleChoiceEvaluation.loadTask($0, directory: Self.data) }
            let results = try MultipleChoiceEvaluation.run(tasks: tasks, fewShot: selection.fewShot, limit: run.limit.map(DocumentLimit.first),
                                                           scorer: scorer, format: try run.format(loaded))
            for result in results {
                for (index, document) in run.documents[result.task.name]!.enumerated() {
                    let request = result.requests[index].unsplit
                    #expect(request.context == document["context"] as! String, "\(result.task.name) doc \(index) context")
                    #expect(request.continuations == document["continuations"] as! [String], "\(result.task.name) doc \(index) continuations")
                    let lls = (document["loglikelihoods"] as! [NSNumber]).map(\.doubleValue)
                    differences += zip(result.scores[index], lls).map { abs($0.loglikelihood - $1) / max(1, abs($1)) }
                }
            }
        }
        let mean = differences.reduce(0, +) / Double(differences.count)
        print("Q4_1 GGUF vs lm-eval on its f32 weights (\(fixture)): mean relative |Δ loglikelihood| = \(mean), max = \(differences.max()!)")
        #expect(mean < 0.02)
        #expect(differences.max()! < 0.1)
    }

    // MARK: - Hand-checked rules

    @Test func trailingWhitespaceMovesToTheContinuation() {
        let request = MultipleChoiceTask.split(context: "Answer: \n ", continuations: [" yes", "no"])
        #expect(request.context == "Answer:")
        #expect(request.continuations == [" \n  yes", " \n no"])
        let plain = MultipleChoiceTask.split(context: "Q\nA:", continuations: [" x"])
        #expect(plain == MultipleChoiceTask.Request(context: "Q\nA:", continuations: [" x"]))
    }

    @Test func fewShotPromptsUseLMEvalDelimiters() throws {
        let documents = [MultipleChoiceDocument(query: "Q1\nAnswer:", choices: ["a", "b"], gold: 1),
                         MultipleChoiceDocument(query: "Q2\nAnswer:", choices: ["c", "d"], gold: 0),
                         MultipleChoiceDocument(query: "Q3\nAnswer:", choices: ["e", "f"], gold: 0)]
        let task = MultipleChoiceTask(name: "t", documents: documents, fewShotPool: documents, sampler: .firstN,
                                      description: "About x.\n\n")
        let requests = try task.requests(fewShot: 2)
        #expect(requests[2].context == "About x.\n\nQ1\nAnswer: b\n\nQ2\nAnswer: c\n\nQ3\nAnswer:")
        #expect(requests[2].continuations == [" e", " f"])
        // Python: random.Random(1234).sample(range(3), 2) == [1, 0] (seeded sampler, pool = the evaluation split,
        // the document itself removed from n + 1 draws).
        let seeded = MultipleChoiceTask(name: "t", documents: documents)
        let shots = try seeded.requests(fewShot: 1)
        #expect(shots[0].context == "Q2\nAnswer: c\n\nQ1\nAnswer:")
        // lm-eval's --seed: the fourth value (or the only one) seeds the sampler; random.Random(42).sample(range(3),
        // 2) == [2, 0], so document 0's shot is document 2.
        #expect(try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "0,1234,1234,42") == 42)
        #expect(try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "42") == 42)
        #expect(try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "0,1,2") == 1234)
        #expect(try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "0,1,2,None") == 1234)
        #expect(throws: HoneError.self) { try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "0,x,2,3") }
        #expect(throws: HoneError.self) { try MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed: "1,2") }
        let reseeded = MultipleChoiceEvaluation.withFewShotSeed(42, [seeded, task])
        #expect(try reseeded[0].requests(fewShot: 1)[0].context == "Q3\nAnswer: e\n\nQ1\nAnswer:")
        #expect(reseeded[1].sampler == .firstN)
    }

    /// lm-eval 0.4.13's instruct formatting, by hand: maybe_delimit joins instruction and description; a template
    /// that rejects the system role is rendered again without it; the opened assistant turn's newline moves to the
    /// continuations.
    @Test func chatPromptsFollowLMEval() throws {
        let documents = [MultipleChoiceDocument(query: "Q1\nAnswer:", choices: ["a", "b"], gold: 1),
                         MultipleChoiceDocument(query: "Q2\nAnswer:", choices: ["c", "d"], gold: 0)]
        let task = MultipleChoiceTask(name: "t", documents: documents, fewShotPool: documents, sampler: .firstN,
                                      description: "About x.\n\n")
        // No template: the instruction, "\n\n", then the plain prompt.
        let plain = try task.requests(fewShot: 1, format: .init(systemInstruction: "Be brief."))
        #expect(plain[1].context == "Be brief.\n\nAbout x.\n\nQ1\nAnswer: b\n\nQ2\nAnswer:")
        #expect(MultipleChoiceTask.joined("Be brief.\n", "About", delimiter: "\n\n") == "Be brief.\nAbout")
        let source = """
            {% for m in messages %}{% if m.role == 'system' and strict %}{{ raise_exception('no system role') }}{% endif %}\
            [{{ m.role }}]{{ m.content }}|{% endfor %}{% if add_generation_prompt %}[assistant]\n{% endif %}
            """
        func template(strict: Bool) throws -> ChatTemplate {
            try ChatTemplate(source: (strict ? "{% set strict = true %}" : "{% set strict = false %}") + source,
                             bosToken: nil, eosToken: nil, origin: "test")
        }
        let turns = try task.requests(fewShot: 1, format: .init(chatTemplate: try template(strict: false), fewShotAsMultiturn: true))
        #expect(turns[1].context == "[system]About x.\n\n|[user]Q1\nAnswer:|[assistant]b|[user]Q2\nAnswer:|[assistant]")
        #expect(turns[1].continuations == ["\nc", "\nd"])
        #expect(turns[1].movedWhitespace == "\n")
        let oneMessage = try task.requests(fewShot: 1, format: .init(chatTemplate: try template(strict: false)))
        #expect(oneMessage[1].context == "[system]About x.\n\n|[user]Q1\nAnswer: b\n\nQ2\nAnswer:|[assistant]")
        let withoutSystem = try task.requests(fewShot: 1, format: .init(chatTemplate: try template(strict: true)))
        #expect(withoutSystem[1].context == "[user]Q1\nAnswer: b\n\nQ2\nAnswer:|[assistant]")
    }

    /// lm-eval's HF backend adds no BOS to a text that already starts with the BOS token's text.
    @Test func noSecondBOSAfterATemplatesOwn() throws {
        let loaded = try LoadedModel.open(Repository.fixture("eval/tiny-llama"))
        let tokenizer = try loaded.tokenizer()
        let bos = try #require(tokenizer.bosTokenID)
        let scorer = MultipleChoiceScorer(model: loaded.model, tokenizer: tokenizer)
        let plain = scorer.tokenize(MultipleChoiceTask.Request(context: "Hello there", continuations: [" you"]))
        let prefixed = scorer.tokenize(MultipleChoiceTask.Request(context: "<s>Hello there", continuations: [" you"]))
        #expect(plain.context.first == bos)
        #expect(prefixed.context.first == bos && prefixed.context.dropFirst().first != bos)
        #expect(prefixed.context.filter { $0 == bos }.count == 1)
    }

    @Test func accNormDividesByCharacters() {
        // acc picks choice 0 (−4 > −5); per character, choice 1 wins: −5/10 = −0.5 > −4/4 = −1. "é" is one character.
        let document = MultipleChoiceDocument(query: "q", choices: ["abcé", "abcdefghij"], gold: 1)
        let task = MultipleChoiceTask(name: "t", documents: [document])
        let metrics = MultipleChoiceEvaluation.documentMetrics(task: task, document: document, loglikelihoods: [-4, -5])
        #expect(metrics == ["acc": 0, "acc_norm": 1])
        // Ties go to the first choice, as numpy's argmax.
        let tie = MultipleChoiceEvaluation.documentMetrics(task: task, document: document, loglikelihoods: [-4, -4])
        #expect(tie["acc"] == 0)
    }

    @Test func mc2IsTheNormalisedMassOfTrueAnswers() {
        let document = MultipleChoiceDocument(query: "q", choices: ["t1", "t2", "f"], gold: 0, labels: [1, 1, 0])
        let task = MultipleChoiceTask(name: "truthfulqa_mc2", documents: [document], metrics: [.acc], isMC2: true)
        let lls = [log(0.2), log(0.1), log(0.3)]
        let metrics = MultipleChoiceEvaluation.documentMetrics(task: task, document: document, loglikelihoods: lls)
        #expect(abs(metrics["acc"]! - 0.5) < 1e-12)
        // Far below exp's range, the ratio is still defined.
        let tiny = MultipleChoiceEvaluation.documentMetrics(task: task, document: document, loglikelihoods: [-2000, -2000, -2000])
        #expect(abs(tiny["acc"]! - 2.0 / 3.0) < 1e-12)
    }

    @Test func standardErrorsFollowLMEval() {
        let (mean, stderr) = MultipleChoiceEvaluation.meanAndStderr([1, 0, 1, 1])
        #expect(mean == 0.75)
        #expect(abs(stderr! - 0.25) < 1e-12)  // sample sd 0.5 / √4
        #expect(MultipleChoiceEvaluation.meanAndStderr([1]).1 == nil)
        let (value, pooled) = MultipleChoiceEvaluation.groupAggregate([(0.5, 0.1, 10), (1.0, 0.2, 30)])
        #expect(abs(value - 0.875) < 1e-12)
        let expected = ((9 * 0.01 * 10 + 29 * 0.04 * 30) / 38.0 / 40.0).squareRoot()
        #expect(abs(pooled! - expected) < 1e-12)
    }

    @Test func hellaSwagPreprocessing() {
        #expect(MultipleChoiceData.hellaSwagPreprocess(" How to x [title] Brush. [step] Start  now. ") == "How to x. Brush. Start now.")
        #expect(pythonCapitalize("then SECTION it") == "Then section it")
    }

    @Test func readsTheTextRenderingAndHFTruthfulQA() throws {
        let directory = try makeTemporaryDirectory()
        let text = directory.appendingPathComponent("h.txt").path
        try "Roof: A man is on a roof. he\n3\nis a.\nis b.\nis c.\nstarts  pulling.\n".write(toFile: text, atomically: true, encoding: .utf8)
        let documents = try MultipleChoiceData.readHellaSwagText(path: text)
        #expect(documents == [MultipleChoiceDocument(query: "Roof: A man is on a roof. he", choices: ["is a.", "is b.", "is c.", "starts pulling."],
                                                     gold: 3, origin: "\(text):1")])
        let hf = directory.appendingPathComponent("t.jsonl").path
        try #"{"question": "Q?", "mc1_targets": {"choices": ["a", "b"], "labels": [1, 0]}, "mc2_targets": {"choices": ["b", "a", "c"], "labels": [0, 1, 1]}}"#
            .write(toFile: hf, atomically: true, encoding: .utf8)
        let mc2 = try MultipleChoiceData.readTruthfulQA(path: hf, mc: 2)
        #expect(mc2[0].choices == ["b", "a", "c"])
        #expect(mc2[0].labels == [0, 1, 1])
        #expect(mc2[0].query.hasSuffix("Barcelona, Spain.\n\nQ: Q?\nA:"))
    }

    @Test func badFilesNameFileRecordAndField() throws {
        let directory = try makeTemporaryDirectory()
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        let arc = directory.appendingPathComponent("arc.jsonl").path
        let good = "{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"A\"}\n"
        for (second, expected) in [
            ("{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", \"B\"]}}", "missing field \"answerKey\""),
            // Counts that disagree were read silently, and one choice was blamed on the answer key.
            ("{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\", \"c\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"A\"}",
             "field \"choices\" has 3 texts but 2 labels"),
            ("{\"question\": \"q\", \"choices\": {\"text\": [\"a\"], \"label\": [\"A\"]}, \"answerKey\": \"A\"}",
             "field \"choices\" has 1 choice; a question needs at least 2"),
        ] {
            try (good + second + "\n").write(toFile: arc, atomically: true, encoding: .utf8)
            #expect(message { _ = try MultipleChoiceData.readARC(path: arc) } == "\(arc):2: \(expected)")
        }
        let csv = directory.appendingPathComponent("x_test.csv").path
        try "q,a,b,c,d,A\r\nq2,a,b,c,d,E\r\n".write(toFile: csv, atomically: true, encoding: .utf8)
        #expect(message { _ = try MultipleChoiceData.readMMLU(path: csv) }.hasPrefix("\(csv):2: field 6 (answer)"))
        // MMLU as `cais/mmlu` exports it.
        let export = directory.appendingPathComponent("test.jsonl").path
        let record = "{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": 2}\n"
        for (second, expected) in [
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\"], \"answer\": 0}",
             "field \"choices\" must be an array of 4 strings, found 3 values"),
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", 4], \"answer\": 0}",
             "field \"choices\" must be an array of 4 strings, found 4 values, not all strings"),
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": \"abcd\", \"answer\": 0}",
             "field \"choices\" must be an array of 4 strings, found a string"),
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": 4}",
             "field \"answer\" must be 0–3 (or A–D), found 4"),
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": \"E\"}",
             "field \"answer\" must be 0–3 (or A–D), found \"E\""),
            ("{\"question\": \"q\", \"subject\": \"anatomy\", \"choices\": [\"a\", \"b\", \"c\", \"d\"]}", "missing field \"answer\""),
            ("{\"question\": \"q\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": 1}", "missing field \"subject\""),
        ] {
            try (record + second + "\n").write(toFile: export, atomically: true, encoding: .utf8)
            #expect(message { _ = try MultipleChoiceData.readMMLUExportBySubject(path: export) } == "\(export):2: \(expected)")
        }
        try (record + "{\"question\": \" q2 \", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": \"D\"}\n")
            .write(toFile: export, atomically: true, encoding: .utf8)
        let subjectFile = try MultipleChoiceData.readMMLUExport(path: export)  // one subject's file: no subject needed
        #expect(subjectFile.map(\.gold) == [2, 3])
        #expect(subjectFile[1].query == "q2\nA. a\nB. b\nC. c\nD. d\nAnswer:")
        // The "all" layout: a subject it lacks, and a split it lacks, are named.
        let exports = directory.appendingPathComponent("exports").path
        try FileManager.default.createDirectory(atPath: exports + "/mmlu", withIntermediateDirectories: true)
        try record.write(toFile: exports + "/mmlu/test.jsonl", atomically: true, encoding: .utf8)
        #expect(message { _ = try MultipleChoiceEvaluation.loadTask("mmlu_anatomy", directory: exports) }
            == "\(exports)/mmlu/dev.jsonl: no such file or directory")
        try record.write(toFile: exports + "/mmlu/dev.jsonl", atomically: true, encoding: .utf8)
        #expect(try MultipleChoiceEvaluation.loadTask("mmlu_anatomy", directory: exports).documents.map(\.gold) == [2])
        #expect(message { _ = try MultipleChoiceEvaluation.loadTask("mmlu_virology", directory: exports) }
            == "\(exports)/mmlu/test.jsonl: no documents for mmlu_virology")
        let piqa = directory.appendingPathComponent("valid.jsonl").path
        try "{\"goal\": \"g\", \"sol1\": 1, \"sol2\": \"b\"}\n".write(toFile: piqa, atomically: true, encoding: .utf8)
        #expect(message { _ = try MultipleChoiceData.readPIQA(path: piqa, labelsPath: nil) }
            == "\(piqa):1: field \"sol1\" must be a string, found a number")
        // A labels file with CRLF line ends ("\r\n" is one Character: the whole file was read as one line).
        try "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n{\"goal\": \"h\", \"sol1\": \"c\", \"sol2\": \"d\"}\n"
            .write(toFile: piqa, atomically: true, encoding: .utf8)
        let labels = directory.appendingPathComponent("valid-labels.lst").path
        try "1\r\n0\r\n".write(toFile: labels, atomically: true, encoding: .utf8)
        #expect(try MultipleChoiceData.readPIQA(path: piqa, labelsPath: labels).map(\.gold) == [1, 0])
        let missing = directory.appendingPathComponent("none").path
        #expect(message { _ = try MultipleChoiceEvaluation.loadTask("piqa", directory: missing) }
            == "\(missing)/piqa/valid.jsonl: no such file or directory")
        let truthful = directory.appendingPathComponent("mc_task.json").path
        try "[{\"question\": \"q\", \"mc1_targets\": {\"a\": 1, \"b\": 0}, \"mc2_targets\": {\"a\": \"yes\"}}]".write(toFile: truthful, atomically: true, encoding: .utf8)
        #expect(message { _ = try MultipleChoiceData.readTruthfulQA(path: truthful, mc: 2) }
            == "\(truthful):1: field \"mc2_targets\" must map answers to 0 or 1")
        #expect(message { _ = try MultipleChoiceEvaluation.select("arc_easy,nope", numFewShot: nil) }.hasPrefix("unknown task 'nope'"))
    }

    @Test func quotedCSVFields() throws {
        let rows = try MultipleChoiceData.parseCSV("\u{FEFF}\"a, b\",\"say \"\"hi\"\"\nthere\",c\r\nd,,e\r\n", path: "x")
        #expect(rows.map(\.fields) == [["a, b", "say \"hi\"\nthere", "c"], ["d", "", "e"]])
        #expect(rows.map(\.line) == [1, 3])
    }
}
