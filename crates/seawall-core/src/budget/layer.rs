//! [`BudgetLayer`]: a tower middleware that gives every request a budget under the timeout
//! policy, refuses requests it cannot fit, and cancels the ones that outlive it.
//!
//! Unlike tower's `TimeoutLayer`, the timeout obeys the process-wide [`TimeoutPolicy`] (its
//! maximum and its incident scale factor) and a request is not started at all when the policy
//! says it cannot finish.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Budget, BudgetError, BudgetExhausted, DeadlineExceeded, TimeoutPolicy};
use crate::time::{Clock, MonotonicClock};

/// Wraps services in [`BudgetService`].
#[derive(Debug, Clone, Copy)]
pub struct BudgetLayer {
    timeout: Duration,
}

impl BudgetLayer {
    /// Every request gets `timeout`, scaled and capped by the process-wide policy at the moment
    /// the request arrives (so an incident-time policy change applies at once).
    pub fn new(timeout: Duration) -> Self {
        BudgetLayer { timeout }
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;

    fn layer(&self, inner: S) -> BudgetService<S> {
        BudgetService {
            inner,
            timeout: self.timeout,
        }
    }
}

/// A service whose requests run under a budget (see [`BudgetLayer`]).
#[derive(Debug, Clone)]
pub struct BudgetService<S> {
    inner: S,
    timeout: Duration,
}

/// A request's error: the service's own, or the budget's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, Req> Service<Req> for BudgetService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BudgetFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let now = MonotonicClock.now();
        let budget = Budget::new(now, self.timeout, TimeoutPolicy::global());
        match budget.timeout_for(now, None) {
            Err(exhausted) => BudgetFuture::Exhausted(Some(exhausted)),
            Ok(timeout) => BudgetFuture::Running {
                inner: self.inner.call(req),
                sleep: tokio::time::sleep(timeout),
                timeout,
            },
        }
    }
}

/// The response future of [`BudgetService`].
#[pin_project(project = BudgetFutureProj)]
#[derive(Debug)]
pub enum BudgetFuture<F> {
    /// Refused before the inner service was called.
    Exhausted(Option<BudgetExhausted>),
    /// Running, until the inner future or the sleep finishes first.
    Running {
        /// The inner service's future.
        #[pin]
        inner: F,
        /// Fires at the deadline.
        #[pin]
        sleep: tokio::time::Sleep,
        /// The time the request was given.
        timeout: Duration,
    },
}

impl<F, T, E> Future for BudgetFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BudgetFutureProj::Exhausted(e) => {
                let e = e.take().unwrap_or(BudgetExhausted {
                    remaining: Duration::ZERO,
                    min_to_start: Duration::ZERO,
                });
                Poll::Ready(Err(Box::new(BudgetError::Exhausted(e))))
            }
            BudgetFutureProj::Running {
                inner,
                sleep,
                timeout,
            } => {
                if let Poll::Ready(r) = inner.poll(cx) {
                    return Poll::Ready(r.map_err(Into::into));
                }
                match sleep.poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Box::new(BudgetError::DeadlineExceeded(
                        DeadlineExceeded { timeout: *timeout },
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    #[tokio::test(start_paused = true)]
    async fn fast_requests_pass_and_slow_ones_are_cancelled() {
        let svc = ServiceBuilder::new()
            .layer(BudgetLayer::new(Duration::from_millis(100)))
            .service(service_fn(|delay_ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Ok::<_, std::io::Error>(delay_ms)
            }));
        assert_eq!(svc.clone().oneshot(10).await.ok(), Some(10));
        let err = svc.oneshot(1_000).await.expect_err("cancelled");
        let budget_error = err.downcast_ref::<BudgetError>().expect("a budget error");
        assert!(matches!(budget_error, BudgetError::DeadlineExceeded(_)));
    }

    #[tokio::test]
    async fn a_request_that_cannot_fit_is_refused_without_calling_the_service() {
        let svc = BudgetLayer::new(Duration::ZERO).layer(service_fn(|(): ()| async {
            panic!("the inner service must not be called");
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        }));
        let err = svc.oneshot(()).await.expect_err("refused");
        assert!(matches!(
            err.downcast_ref::<BudgetError>(),
            Some(BudgetError::Exhausted(_))
        ));
    }
}
