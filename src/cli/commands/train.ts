/** `sso train`: runs a trainer in this process from a JSON config, without the service. */
import type { ControlSignal, TrainerCallbacks } from '../../sso/trainer-interface.ts'
import { type Command, listOption, positionalArgs, stringOption } from '../command.ts'
import { readCliEnvironment } from '../environment.ts'
import { ProgressBar } from '../progress-bar.ts'
import { loadTrainJob } from '../train-config.ts'
import { parseAssignments } from './runs.ts'

export const train: Command = {
  path: ['train'],
  summary: 'train locally from a JSON config, with a live progress bar (no service needed)',
  args: '<config.json>',
  options: {
    'output-dir': {
      type: 'string',
      arg: 'dir',
      description: 'override output_dir (checkpoints, samples, final model)',
    },
    device: { type: 'string', arg: 'device', description: 'override device: auto, cpu, webgpu or cuda' },
    set: { type: 'string', arg: 'key=value', multiple: true, description: 'override a hyperparameter' },
    json: {
      type: 'boolean',
      description:
        'print JSON lines ({ kind: metrics|event|checkpoint|samples|result, ... }) instead of the bar',
    },
  },
  details: `Config (paths relative to the file):
  {
    "method": "sso",
    "model": "models/tiny",
    "principle_set": "principles.json",      (optional: the built-in set)
    "datasets": ["queries.jsonl"],
    "hyperparameters": { "iterations": 2, "max_new_tokens": 32 },
    "device": "auto", "seed": 1,
    "output_dir": "runs/local-1"
  }
Ctrl-C once cancels after the current step and keeps a checkpoint (resume with "resume_from");
twice stops at once.`,
  async run(ctx) {
    const [file] = positionalArgs(ctx, this, ['<config.json>'])
    const job = await loadTrainJob(file, {
      outputDir: stringOption(ctx, 'output-dir', this, false),
      device: stringOption(ctx, 'device', this, false),
      hyperparameters: parseAssignments(listOption(ctx, 'set'), 'set', this),
    })
    const json = ctx.values.json === true
    const emit = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)
    const bar = new ProgressBar(process.stdout, { interactive: readCliEnvironment().color })
    const iterations = job.hyperparameters.iterations
    bar.update({ iterations: typeof iterations === 'number' ? iterations : undefined })

    let control: ControlSignal = 'continue'
    const onSigint = () => {
      if (control === 'cancel') process.exit(130)
      control = 'cancel'
      bar.log('cancelling after the current step (Ctrl-C again to stop now)')
    }
    process.on('SIGINT', onSigint)
    const callbacks: TrainerCallbacks = {
      onMetrics(batch) {
        if (json) emit({ kind: 'metrics', ...batch })
        else bar.update({ step: batch.step, iteration: batch.iteration, loss: batch.values.loss })
      },
      onEvent(event) {
        if (json) return emit({ kind: 'event', ...event })
        const data = event.data ?? {}
        bar.update({
          phase: event.phase,
          ...(event.type === 'progress' ? { done: Number(data.done), total: Number(data.total) } : {}),
        })
        if (event.type !== 'progress') bar.log(`  ${event.type}: ${event.message}`)
      },
      onCheckpoint(info) {
        if (json) emit({ kind: 'checkpoint', checkpoint: info })
        else bar.log(`  checkpoint: step ${info.step} -> ${info.dir}`)
      },
      onSamples(iteration, records) {
        if (json) emit({ kind: 'samples', iteration, count: records.length })
        else bar.log(`  samples: ${records.length} records from iteration ${iteration}`)
      },
      control: () => control,
    }
    // Loaded here: the model and engine stack is only needed by this command. The trainer runs on a
    // worker_thread so the progress bar and Ctrl-C stay live during long steps.
    // Local training has the machine to itself: the thread keeps normal priority.
    const { trainerInThread } = await import('../../worker/trainer-thread.ts')
    try {
      const result = await trainerInThread({ nice: 0 })(job, callbacks)
      if (json) emit({ kind: 'result', ...result })
      else
        bar.finish(
          `${result.status} at step ${result.finalStep} on ${result.device}; output in ${job.outputDir}`,
        )
      return 0
    } finally {
      process.off('SIGINT', onSigint)
    }
  },
}
