import Type from 'typebox'
import { HyperparametersSchema } from '../sso/hyperparameters.ts'

/** The request form: every hyperparameter optional (defaults fill in), unknown names rejected. */
export const HyperparametersInputSchema = Type.Partial(HyperparametersSchema, { additionalProperties: false })
export { HyperparametersSchema }
