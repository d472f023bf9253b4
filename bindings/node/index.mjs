// ESM entry point: the same objects as the CommonJS one (not a second copy), so `instanceof`
// holds whichever way a program loads Seawall.
import seawall from './index.js'

export const {
  CircuitBreaker,
  Permit,
  ManualClock,
  SeawallError,
  BreakerOpenError,
  SnapshotError,
} = seawall

export default seawall
