/** Every `sso` command, in the order `sso --help` lists them. */
import type { Command } from '../command.ts'
import { adminKey } from './admin-key.ts'
import { bench } from './bench.ts'
import { datasetsExport, datasetsImport, datasetsList } from './datasets.ts'
import { evalCommand } from './eval.ts'
import { makeTinyModelCommand } from './make-tiny-model.ts'
import { modelsList, modelsRegister } from './models.ts'
import { keysCreate, projectsCreate, projectsList, whoami } from './projects.ts'
import { runsCancel, runsCreate, runsGet, runsList, runsPause, runsResume, runsWatch } from './runs.ts'
import { serve, worker } from './serve.ts'
import { train } from './train.ts'
import { workersList } from './workers.ts'

export const COMMANDS: readonly Command[] = [
  serve,
  worker,
  adminKey,
  whoami,
  projectsList,
  projectsCreate,
  keysCreate,
  runsCreate,
  runsList,
  runsGet,
  runsWatch,
  runsCancel,
  runsPause,
  runsResume,
  datasetsImport,
  datasetsExport,
  datasetsList,
  modelsList,
  modelsRegister,
  workersList,
  train,
  evalCommand,
  makeTinyModelCommand,
  bench,
]
