import Foundation

/// Optimisation settings with alpaca-lora/CUT names and defaults (spec §3.2).
public struct TrainingOptions: Sendable {
    public var batchSize = 128
    public var microBatchSize = 4
    public var epochs = 3
    /// When positive, training stops after this many optimizer steps (and the schedule spans them); 0 and -1
    /// mean unset, as in transformers' `max_steps`.
    public var maxSteps: Int?
    public var learningRate = 3e-4
    public var schedule = LearningRateSchedule.linear
    public var warmupSteps = 100
    public var weightDecay = 0.0
    public var maxGradNorm = 1.0
    public var seed: UInt64 = 42
    /// 0 = only at the end.
    public var saveSteps = 200
    /// 0 = only at the end (when there is a validation set).
    public var evalSteps = 200
    public var gradientCheckpointing = false
    public var groupByLength = false

    public init() {}

    public var accumulationSteps: Int { max(1, batchSize / max(1, microBatchSize)) }
    /// The examples of one optimizer step: micro-batch × accumulation (batch_size rounded down as alpaca-lora does).
    public var examplesPerStep: Int { accumulationSteps * max(1, microBatchSize) }

    func validate() throws {
        guard microBatchSize > 0 else { throw HoneError.invalidArgument("\(OptionName("micro_batch_size")) must be positive") }
        guard batchSize >= microBatchSize else {
            throw HoneError.invalidArgument("\(OptionName("batch_size")) (\(batchSize)) must be at least \(OptionName("micro_batch_size")) (\(microBatchSize))")
        }
        guard epochs > 0 || (maxSteps ?? 0) > 0 else { throw HoneError.invalidArgument("\(OptionName("num_epochs")) must be positive") }
        // Step counts stay far from Int's end: steps per epoch × epochs overflowed (a trap) past these.
        for (name, value) in [("batch_size", batchSize), ("num_epochs", epochs)] where value > Int(Int32.max) {
            throw HoneError.invalidArgument("\(OptionName(name)) must be at most \(Int32.max), not \(value)")
        }
        if let maxSteps, maxSteps < -1 {
            throw HoneError.invalidArgument("\(OptionName("max_steps")) must be positive (or -1 for none), not \(maxSteps)")
        }
        guard warmupSteps >= 0 else { throw HoneError.invalidArgument("\(OptionName("warmup_steps")) must be at least 0, not \(warmupSteps)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("learning_rate")) must be a positive finite number, not \(learningRate)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("weight_decay")) must be a finite number at least 0, not \(weightDecay)")
        }
        // 0 or below turns clipping off, as in transformers; NaN would clip every gradient to NaN.
        guard !maxGradNorm.isNaN else { throw HoneError.invalidArgument("\(OptionName("max_grad_norm")) must be a number, not nan") }
    }

    /// `maxSteps` when it is set (positive).
    var stepLimit: Int? { maxSteps.flatMap { $0 > 0 ? $0 : nil } }
}

/// One optimizer step as recorded in metrics.jsonl.
public struct StepRecord: Sendable {
    public var step: Int
    public var loss: Double
    public var learningRate: Double
    public var gradientNorm: Double
    public var tokensPerSecond: Double
    public var evalLoss: Double?
    public var metrics: [String: Double]
    /// The line this record was read from (a resumed run's earlier steps): written back as it was, since numbers
    /// parsed and printed again can move by an ulp.
    var readFrom: String?

    var jsonLine: String {
        if let readFrom { return readFrom }
        var fields = ["\"step\": \(step)", "\"loss\": \(jsonNumber(loss))", "\"lr\": \(jsonNumber(learningRate))",
                      "\"grad_norm\": \(jsonNumber(gradientNorm))", "\"tokens_per_s\": \(jsonNumber(tokensPerSecond))"]
        if let evalLoss { fields.append("\"eval_loss\": \(jsonNumber(evalLoss))") }
        for key in metrics.keys.sorted() { fields.append("\(jsonString(key)): \(jsonNumber(metrics[key]!))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

/// The training loop: micro-batches with gradient accumulation, clipping, AdamW, the learning-rate schedule,
/// evaluation, checkpoints that resume bit-exactly, metrics.jsonl and loss.svg, progress on stderr.
public final class Trainer {
    public let engine: TrainingEngine
    public let objective: TrainingObjective
    public let options: TrainingOptions
    public let outputDirectory: String
    public let optimizer: AdamWOptimizer
    /// Recorded in the adapter files.
    public var baseModelName = ""
    /// What the run trains on, by content (base model, data, init adapter): part of the checkpoint fingerprint, so
    /// a resume over a replaced input is refused.
    public var inputIdentity = ""
    public var record = PEFTAdapter.TrainingRecord()
    /// Called after each optimizer step (the CLI shows progress; tests can stop a run).
    public var onStep: ((StepRecord, _ totalSteps: Int) -> Void)?
    /// Test hook: stop (as if killed) after this many steps of this run, without a final save.
    public var stopAfterSteps: Int?
    public private(set) var history: [StepRecord] = []
    /// Replaces the seeded data order (tests replay an oracle's exact micro-batches).
    public var batchOrder: ((Int) -> [[Int]])?
    /// The ranks sharing this run (data parallelism under mpirun): each takes its share of every step's
    /// micro-batches, gradients are summed over ranks before the update, and only rank 0 writes files.
    public var processGroup = ProcessGroup.single
    /// Seconds spent summing gradients and figures across ranks in this run (what data parallelism costs).
    public private(set) var exchangeSeconds = 0.0

    public init(engine: TrainingEngine, objective: TrainingObjective, options: TrainingOptions, outputDirectory: String) throws {
        try options.validate()
        guard objective.trainingCount > 0 else { throw HoneError.invalidArgument("the training set is empty") }
        self.engine = engine
        self.objective = objective
        self.options = options
        self.outputDirectory = outputDirectory
        optimizer = AdamWOptimizer(adapters: engine.adapters, weightDecay: options.weightDecay)
        engine.gradientCheckpointing = options.gradientCheckpointing
    }

    public var stepsPerEpoch: Int {
        (objective.trainingCount + options.examplesPerStep - 1) / options.examplesPerStep
    }

    public var totalSteps: Int { options.stepLimit ?? stepsPerEpoch * options.epochs }

    /// Example indices of optimizer step `step` (0-based), split into micro-batches. Each epoch has its own seeded
    /// order, so any step's batch is known without replaying the ones before it (what makes resuming exact).
    public func microBatches(ofStep step: Int) -> [[Int]] {
        if let batchOrder { return batchOrder(step) }
        let epoch = step / stepsPerEpoch
        let order = epochOrder(epoch)
        let start = (step % stepsPerEpoch) * options.examplesPerStep
        let indices = Array(order[start..<min(order.count, start + options.examplesPerStep)])
        return stride(from: 0, to: indices.count, by: options.microBatchSize).map {
            Array(indices[$0..<min(indices.count, $0 + options.microBatchSize)])
        }
    }

    private var cachedOrder: (epoch: Int, order: [Int])?

    private func epochOrder(_ epoch: Int) -> [Int] {
        if let cachedOrder, cachedOrder.epoch == epoch { return cachedOrder.order }
        let seed = options.seed &+ UInt64(epoch) &* 0x9E37_79B9
        var order = DataOrder.permutation(count: objective.trainingCount, seed: seed)
        if objective.trainsInOrder {
            order = Array(0..<objective.trainingCount)
        } else if options.groupByLength {
            // transformers passes the per-device batch times the accumulation steps as the batch size.
            let lengths = (0..<objective.trainingCount).map { objective.length(ofTrainingExample: $0) }
            order = DataOrder.groupedByLength(lengths: lengths, batchSize: options.examplesPerStep, permutation: order)
        }
        cachedOrder = (epoch, order)
        return order
    }

    // MARK: - Running

    /// Trains from step 0, or from the checkpoint `resume` (a checkpoint directory) when given.
    @discardableResult
    public func run(resumingFrom resume: String? = nil) throws -> [StepRecord] {
        let group = processGroup
        if group.isRoot { try createOutputDirectory(outputDirectory) }
        var firstStep = 0
        if let resume, group.isRoot {
            firstStep = try TrainingCheckpoint.restore(from: resume, trainer: self)
            history = try MetricsLog.read(directory: outputDirectory).filter { $0.step <= firstStep }
        } else {
            history = []
        }
        if group.isDistributed {
            // Only rank 0 reads the checkpoint (the output directory need not be shared); every rank then starts
            // from its adapter and optimizer state, or from rank 0's fresh adapter.
            let counters = try group.broadcast([Double(firstStep), Double(optimizer.step)])
            firstStep = Int(counters[0])
            optimizer.step = Int(counters[1])
            try group.broadcast(optimizer.parameters.map(\.value) + optimizer.moments.flatMap { [$0.first, $0.second] })
        }
        if group.isRoot { try MetricsLog.rewrite(history, directory: outputDirectory) }
        let totalSteps = self.totalSteps
        var stepsThisRun = 0
        for step in firstStep..<totalSteps {
            let start = DispatchTime.now()
            optimizer.zeroGradients()
            let batches = microBatches(ofStep: step)
            let stepExamples = batches.flatMap { $0 }
            // Each micro-batch's gradient is computed from zero and the step's sum is formed in micro-batch order,
            // whichever rank ran which micro-batch: N ranks then give one process's numbers bit for bit.
            var stepGradient = [Float](repeating: 0, count: group.isDistributed ? 0 : optimizer.parameterCount)
            var ownShares: [MicroBatchShare] = []
            for (index, batch) in batches.enumerated() where group.owns(index) {
                engine.adapters.dropoutSeed = options.seed &* 0x1000_0001 &+ UInt64(step) &* 0x10001 &+ UInt64(index)
                let result = try objective.accumulate(microBatch: batch, step: stepExamples, engine: engine)
                // No step may be taken, and no run may end "done", on a NaN or an infinity: stop before the update,
                // naming where it appeared, with the last checkpoint untouched.
                let badGradient = engine.adapters.firstNonFiniteGradient()
                if !result.loss.isFinite || badGradient != nil {
                    let what = result.loss.isFinite ? "a non-finite gradient in \(badGradient!)" : "a non-finite loss (\(result.loss))"
                        + (badGradient.map { ", first non-finite gradient in \($0)" } ?? "")
                    throw nonFiniteStop(what, step: step + 1, microBatch: index + 1, of: batches.count)
                }
                var share = MicroBatchShare(index: index, loss: result.loss, tokens: result.tokens, metrics: result.metrics,
                                            gradient: [])
                if group.isDistributed {
                    share.gradient = optimizer.takeGradients()
                } else {
                    optimizer.addGradients(into: &stepGradient)
                    optimizer.zeroGradients()
                }
                ownShares.append(share)
            }
            var shares = ownShares
            var stopRequested = Interrupt.isPending
            if group.isDistributed {
                let exchangeStart = DispatchTime.now()
                defer { exchangeSeconds += Double(DispatchTime.now().uptimeNanoseconds - exchangeStart.uptimeNanoseconds) / 1e9 }
                let gathered = try group.allGather(MicroBatchShare.encode(ownShares, interrupted: stopRequested))
                shares = []
                for part in gathered {
                    let (partShares, interrupted) = try MicroBatchShare.decode(part)
                    shares += partShares
                    // Every rank stops at the same step, or the others would wait in the next step's exchange forever.
                    stopRequested = stopRequested || interrupted
                }
                shares.sort { $0.index < $1.index }
                stepGradient = [Float](repeating: 0, count: optimizer.parameterCount)
                for share in shares {
                    share.gradient.withUnsafeBufferPointer { part in
                        for position in 0..<part.count { stepGradient[position] += part[position] }
                    }
                }
            }
            optimizer.setGradients(stepGradient)
            var loss = 0.0
            var tokens = 0
            var metrics: [String: Double] = [:]
            for share in shares {
                loss += share.loss
                tokens += share.tokens
                metrics.merge(share.metrics) { $0 + $1 }
            }
            let norm = optimizer.clipGradients(maxNorm: options.maxGradNorm)
            let learningRate = options.learningRate
                * options.schedule.factor(step: step, warmupSteps: options.warmupSteps, totalSteps: totalSteps)
            optimizer.update(learningRate: learningRate)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            var record = StepRecord(step: step + 1, loss: loss, learningRate: learningRate, gradientNorm: norm,
                                    tokensPerSecond: Double(tokens) / max(seconds, 1e-9), evalLoss: nil, metrics: metrics)
            let isLast = step + 1 == totalSteps
            if group.isRoot, objective.validationCount > 0, isLast || (options.evalSteps > 0 && (step + 1) % options.evalSteps == 0) {
                let evalLoss = try objective.validationLoss(engine: engine, microBatchSize: options.microBatchSize)
                guard evalLoss.isFinite else {
                    throw nonFiniteStop("a non-finite validation loss (\(evalLoss)) after the update", step: step + 1,
                                        microBatch: nil, of: batches.count)
                }
                record.evalLoss = evalLoss
                record.metrics.merge(objective.validationMetrics) { $1 }
            }
            history.append(record)
            if group.isRoot { try MetricsLog.append(record, directory: outputDirectory) }
            onStep?(record, totalSteps)
            stepsThisRun += 1
            if let stopAfterSteps, stepsThisRun >= stopAfterSteps, !isLast {
                if options.saveSteps > 0, (step + 1) % options.saveSteps == 0 { try saveCheckpoint(step: step + 1) }
                return history
            }
            if !isLast, options.saveSteps > 0, (step + 1) % options.saveSteps == 0 {
                try saveCheckpoint(step: step + 1)
            }
            if stopRequested {
                try saveCheckpoint(step: step + 1)
                throw HoneError.interrupted(message: "training stopped at step \(step + 1); resume with \(OptionName("resume_from_checkpoint")) \(checkpointPath(step: step + 1))")
            }
        }
        if group.isRoot {
            try PEFTAdapter.save(engine.adapters, baseModel: baseModelName, record: record, to: outputDirectory)
            try LossPlot.write(history, to: (outputDirectory as NSString).appendingPathComponent("loss.svg"))
        }
        return history
    }

    /// One micro-batch's part of a step: its figures and (under mpirun) its gradient, flattened in the optimizer's
    /// parameter order.
    struct MicroBatchShare {
        var index: Int
        var loss: Double
        var tokens: Int
        var metrics: [String: Double]
        var gradient: [Float]

        /// A rank's shares as bytes for the exchange: a JSON header (figures, gradient lengths) and the raw floats.
        static func encode(_ shares: [MicroBatchShare], interrupted: Bool) -> Data {
            let header: [String: Any] = [
                "interrupted": interrupted,
                "shares": shares.map { ["index": $0.index, "loss": $0.loss.bitPattern.description, "tokens": $0.tokens,
                                        "metrics": $0.metrics.mapValues { $0.bitPattern.description }, "floats": $0.gradient.count] },
            ]
            let json = try! JSONSerialization.data(withJSONObject: header)
            var data = Data()
            var length = UInt64(json.count).littleEndian
            withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
            data.append(json)
            for share in shares { share.gradient.withUnsafeBytes { data.append(contentsOf: $0) } }
            return data
        }

        static func decode(_ data: Data) throws -> ([MicroBatchShare], Bool) {
            let malformed = HoneError.invalidArgument("a rank sent a malformed step exchange")
            guard data.count >= 8 else { throw malformed }
            let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
            guard data.count >= 8 + length,
                  let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any],
                  let entries = header["shares"] as? [[String: Any]] else { throw malformed }
            var offset = 8 + length
            var shares: [MicroBatchShare] = []
            func double(_ value: Any?) throws -> Double {
                guard let text = value as? String, let bits = UInt64(text) else { throw malformed }
                return Double(bitPattern: bits)
            }
            for entry in entries {
                guard let index = entry["index"].flatMap(jsonInteger), let tokens = entry["tokens"].flatMap(jsonInteger),
                      let floats = entry["floats"].flatMap(jsonInteger), let metricTexts = entry["metrics"] as? [String: Any],
                      data.count >= offset + floats * 4 else { throw malformed }
                var gradient = [Float](repeating: 0, count: floats)
                gradient.withUnsafeMutableBytes { $0.copyBytes(from: data.subdata(in: offset..<(offset + floats * 4))) }
                offset += floats * 4
                shares.append(MicroBatchShare(index: index, loss: try double(entry["loss"]), tokens: tokens,
                                              metrics: try metricTexts.mapValues(double), gradient: gradient))
            }
            return (shares, header["interrupted"] as? Bool ?? false)
        }
    }

    /// The error that ends a run on a NaN or an infinity: where it appeared and which checkpoint is the last good one.
    func nonFiniteStop(_ what: String, step: Int, microBatch: Int?, of count: Int) -> HoneError {
        var place = "step \(step)"
        if let microBatch { place += ", micro-batch \(microBatch) of \(count)" }
        let latest = latestCheckpoint.map { "the last good checkpoint is \($0) (resume with \(OptionName("resume_from_checkpoint")) latest)" }
            ?? "no checkpoint was written yet"
        return .nonFinite(message: "training stopped: \(place): \(what); nothing of this step was saved; \(latest)")
    }

    public func checkpointPath(step: Int) -> String {
        (outputDirectory as NSString).appendingPathComponent("checkpoint-\(step)")
    }

    func saveCheckpoint(step: Int) throws {
        guard processGroup.isRoot else { return }
        try TrainingCheckpoint.save(step: step, trainer: self, to: checkpointPath(step: step))
        try LossPlot.write(history, to: (outputDirectory as NSString).appendingPathComponent("loss.svg"))
    }
}
