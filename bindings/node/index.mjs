// ESM entry point: the same objects as the CommonJS one (not a second copy), so `instanceof`
// holds whichever way a program loads Seawall.
import seawall from './index.js'

export const {
  CircuitBreaker,
  Permit,
  TimeoutPolicy,
  Budget,
  RetryPolicy,
  RetryLoop,
  RetryBudget,
  retry,
  CallPolicy,
  Pool,
  PoolEngine,
  pgPoolOptions,
  ManualClock,
  MemoryWatchdog,
  WatchdogPolicy,
  readMemory,
  SeawallError,
  BreakerOpenError,
  SnapshotError,
  DeadlineExceededError,
  BudgetExhaustedError,
  RetryBudgetExhaustedError,
  InvalidHeaderError,
  PoolTimeoutError,
  PoolOverloadedError,
  ConnectFailedError,
  DatabaseUnavailableError,
  PoolClosedError,
  PoolReleaseError,
} = seawall

export default seawall
