/**
 * A run must name data its method reads (METHOD_DATASET_FORMATS), so a run without usable data is
 * refused when it is created instead of failing later in the worker.
 */
import { ValidationError } from '../../../../errors.ts'
import type { DatasetDto } from '../../../../schemas/datasets.ts'
import { METHOD_DATASET_FORMATS } from '../../../../schemas/runs.ts'
import type { DatasetFormat } from '../../../../sso/records.ts'
import type { TrainingMethod } from '../../../../sso/trainer-interface.ts'

const DESCRIBED: Record<DatasetFormat, string> = {
  queries: 'queries',
  preference_pairs: 'preference pairs',
  sso_records: 'SSO records',
  sft_pairs: 'SFT pairs',
}

const describeFormats = (formats: readonly DatasetFormat[]) =>
  formats.map((f) => `${DESCRIBED[f]} (format=${f})`).join(' or ')

/** Throws `validation_failed` when a run of `method` would have no data it can read. */
export function assertTrainingData(
  method: TrainingMethod,
  datasets: readonly Pick<DatasetDto, 'id' | 'format'>[],
) {
  const accepted = METHOD_DATASET_FORMATS[method]
  if (datasets.length === 0) {
    throw new ValidationError(
      `a '${method}' run trains on data: pass dataset_ids with at least one dataset of ${describeFormats(accepted)}, ` +
        `uploaded with POST /v1/datasets?format=${accepted[0]}`,
      { problems: [`dataset_ids is empty; a '${method}' run needs ${describeFormats(accepted)}`] },
    )
  }
  const misfits = datasets.filter((d) => !accepted.includes(d.format))
  if (misfits.length > 0) {
    const listed = misfits
      .map((d) => `'${d.id}' holds ${DESCRIBED[d.format]} (format=${d.format})`)
      .join(', ')
    throw new ValidationError(
      `a '${method}' run reads only ${describeFormats(accepted)}, but dataset ${listed}`,
      { problems: misfits.map((d) => `dataset_ids '${d.id}' has format ${d.format}`) },
    )
  }
}
