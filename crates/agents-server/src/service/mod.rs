//! The `agents.v1.AgentService` gRPC service.

pub(crate) mod convert;
mod tasks;
#[cfg(test)]
mod test_agents;
mod unfinished;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agents_core::{
    Agent, AgentContext, AgentError, AgentJsonOutput, CloudEvent, EventSink, ExecutionMetadata,
    Provider, TraceContext,
};
use futures_util::FutureExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::auth::{Authenticator, Principal, Role};
use crate::limits::{Admission, Limiter, Refusal};
use crate::metrics::{InFlightGuard, Metrics, ThrottleReason};
use crate::pb;
use crate::pb::agent_service_server::AgentService;
use crate::shed::ShedReason;
use crate::status;
pub use tasks::TaskTable;
use unfinished::UnfinishedCall;

/// Progress events buffered per streaming call; beyond this, events are dropped (the result
/// still arrives) rather than letting a slow client hold memory.
const STREAM_BUFFER: usize = 64;

/// The service: the agents, the provider chain they call, and where events go.
#[derive(Debug, Clone)]
pub struct AgentsService {
    agents: Arc<HashMap<String, Arc<dyn Agent>>>,
    order: Arc<Vec<String>>,
    provider: Arc<dyn Provider>,
    events: Arc<dyn EventSink>,
    tasks: Arc<TaskTable>,
    auth: Arc<Authenticator>,
    limits: Limiter,
    metrics: Arc<Metrics>,
    /// The JetStream queue, for agents with `dispatch = "queue"`.
    queue: Option<Arc<crate::worker::QueueDispatch>>,
}

impl AgentsService {
    /// A service over `agents`, calling `provider`, emitting to `events`.
    pub fn new(
        agents: Vec<Arc<dyn Agent>>,
        provider: Arc<dyn Provider>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        let order = agents.iter().map(|a| a.id().to_owned()).collect();
        let agents = agents.into_iter().map(|a| (a.id().to_owned(), a)).collect();
        Self {
            agents: Arc::new(agents),
            order: Arc::new(order),
            provider,
            events,
            tasks: Arc::new(TaskTable::new(tasks::DEFAULT_MAX_TASKS)),
            auth: Arc::new(Authenticator::disabled()),
            limits: Limiter::new(crate::limits::LimitsConfig::default()),
            metrics: Arc::new(Metrics::new()),
            queue: None,
        }
    }

    /// Sends the tasks of the agents it handles to the JetStream queue.
    pub fn with_queue(mut self, queue: Arc<crate::worker::QueueDispatch>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Sets where request metrics go.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The table of inline tasks, which shutdown waits for.
    pub(crate) fn task_table(&self) -> Arc<TaskTable> {
        Arc::clone(&self.tasks)
    }

    /// Counts a finished call (`Ok` with how it was made): its code, its time, the part spent
    /// at providers and, when the model's exchange was measured, what the server added to it.
    fn record(
        &self,
        agent: &str,
        total: Duration,
        result: Result<&ExecutionMetadata, &AgentError>,
    ) {
        let (code, provider) = match result {
            Ok(metadata) => (
                tonic::Code::Ok,
                Duration::from_micros(metadata.provider_latency_us),
            ),
            Err(error) => (status::from_agent_error(error).code(), Duration::ZERO),
        };
        self.metrics.record_request(agent, code, total, provider);
        if let Some(upstream) = result.ok().and_then(ExecutionMetadata::upstream_latency) {
            self.metrics.record_gateway_overhead(agent, total, upstream);
        }
    }

    /// Sets who may call what.
    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Sets the load-shedding and tenant limits.
    pub fn with_limits(mut self, limits: Limiter) -> Self {
        self.limits = limits;
        self
    }

    /// Who is calling, if they may call this RPC. Runs before anything else is read.
    fn authorize(&self, metadata: &MetadataMap, role: Role) -> Result<Principal, Status> {
        let principal = self.auth.authenticate(metadata)?;
        principal.require(role)?;
        Ok(principal)
    }

    /// [`authorize`](Self::authorize) for `Execute`, and the client's `id_field` checked
    /// ([`check_id`]) before the call takes a slot or a rate-limit token.
    fn authorize_run(
        &self,
        metadata: &MetadataMap,
        id_field: &str,
        id: &str,
    ) -> Result<Principal, Status> {
        let principal = self.authorize(metadata, Role::Execute)?;
        check_id(id_field, id)?;
        Ok(principal)
    }

    /// A slot under the global and tenant limits, refused at once when full (load shedding,
    /// never a queue). Held for the whole call (or the whole inline task).
    fn admit(&self, principal: &Principal) -> Result<(Admission, InFlightGuard), Status> {
        let admission = self.limits.admit(principal.tenant()).map_err(|refusal| {
            let tenant = principal.tenant();
            match &refusal {
                Refusal::Global { .. } => self.metrics.load_shed(ShedReason::InFlight),
                Refusal::TenantRate { .. } => {
                    self.metrics.tenant_throttled(tenant, ThrottleReason::Rate);
                }
                _ => self
                    .metrics
                    .tenant_throttled(tenant, ThrottleReason::Concurrency),
            }
            Status::from(refusal)
        })?;
        Ok((admission, self.metrics.in_flight_guard()))
    }

    fn agent(&self, id: &str) -> Result<Arc<dyn Agent>, Status> {
        let agent = self.agents.get(id).cloned().ok_or_else(|| {
            Status::not_found(format!(
                "no agent `{id}`; ListAgents names the agents: {}",
                self.order.join(", ")
            ))
        })?;
        // Only a known id goes on the call's span: the client's string could be anything.
        tracing::Span::current().record("agent.id", agent.id());
        Ok(agent)
    }

    /// The run's context: the client's deadline (`grpc-timeout`) and trace. The trace is the
    /// call's server span (the client's `traceparent` is its parent), or, when no
    /// OpenTelemetry layer is installed, the client's `traceparent` itself.
    fn context<T>(
        &self,
        request: &Request<T>,
        principal: &Principal,
        request_id: &str,
        events: Arc<dyn EventSink>,
    ) -> AgentContext {
        let metadata = request.metadata();
        let header = |name| metadata.get(name).and_then(|v| v.to_str().ok());
        // The deadline counts from the request's arrival, as tonic's own `grpc-timeout` timer
        // does: from the handler's start it would end after tonic's, and a call tonic ends
        // would not read as past its deadline.
        let arrived = request
            .extensions()
            .get::<crate::shed::Arrived>()
            .map_or_else(Instant::now, |arrived| arrived.0);
        let trace = crate::telemetry::current_trace_context().unwrap_or_else(|| {
            TraceContext::parse_or_new(header("traceparent"), header("tracestate"))
        });
        tracing::Span::current().record("tenant", principal.tenant());
        let deadline = header("grpc-timeout")
            .and_then(parse_grpc_timeout)
            .and_then(|t| arrived.checked_add(t));
        let mut ctx = AgentContext::new(self.provider.clone())
            .with_trace(trace)
            .with_deadline(deadline)
            .with_events(events);
        if !request_id.is_empty() {
            ctx = ctx.with_request_id(request_id);
        }
        ctx.with_tenant(principal.tenant())
    }
}

/// `grpc-timeout`: an integer of at most 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The response of a finished `Execute` or `ExecuteStream` call: the output as the agent wrote
/// it, and `latency_us` the whole call as the server saw it (`total`: admission and parsing
/// included), so that `latency_us - upstream_latency_us` is everything the server added (and
/// `latency_us - provider_latency_us` all of it outside the provider chain).
fn finished(done: AgentJsonOutput, total: Duration) -> pb::ExecuteResponse {
    let mut response = convert::response_of_json(done.output_json, &done.metadata);
    if let Some(metadata) = response.metadata.as_mut() {
        metadata.latency_us = u64::try_from(total.as_micros()).unwrap_or(u64::MAX);
    }
    response
}

/// A client's `request_id` or `task_id`: empty (the server makes one) or an id that can name
/// the run in its events, audit lines and task key (the rule the task queue applies).
fn check_id(field: &str, id: &str) -> Result<(), Status> {
    if id.is_empty() || agents_bus::is_valid_task_id(id) {
        Ok(())
    } else {
        Err(status::invalid_id(field))
    }
}

fn parse_input(json: &str) -> Result<serde_json::Value, Status> {
    serde_json::from_str(json).map_err(|e| status::invalid_json("input_json", &e))
}

/// Sends a run's events to the server's sink and, as JSON, to the streaming client.
#[derive(Debug)]
struct StreamSink {
    server: Arc<dyn EventSink>,
    client: mpsc::Sender<Result<pb::ExecuteStreamEvent, Status>>,
}

impl EventSink for StreamSink {
    fn emit(&self, event: CloudEvent) {
        if let Ok(json) = serde_json::to_string(&event) {
            let message = pb::ExecuteStreamEvent {
                event: Some(pb::execute_stream_event::Event::CloudEventJson(json)),
            };
            // A full buffer means a slow client: it misses progress, never the result.
            let _ = self.client.try_send(Ok(message));
        }
        self.server.emit(event);
    }
}

#[tonic::async_trait]
impl AgentService for AgentsService {
    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        self.authorize(request.metadata(), Role::Read)?;
        let agents = self
            .order
            .iter()
            .filter_map(|id| self.agents.get(id))
            .map(|a| convert::summary(a.as_ref()))
            .collect();
        Ok(Response::new(pb::ListAgentsResponse { agents }))
    }

    async fn describe_agent(
        &self,
        request: Request<pb::DescribeAgentRequest>,
    ) -> Result<Response<pb::AgentDescriptor>, Status> {
        self.authorize(request.metadata(), Role::Read)?;
        let agent = self.agent(&request.get_ref().agent_id)?;
        Ok(Response::new(convert::descriptor(agent.as_ref())))
    }

    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        // Held until the call ends: the slot is what load shedding counts.
        let started = Instant::now();
        let principal = self.authorize_run(
            request.metadata(),
            "request_id",
            &request.get_ref().request_id,
        )?;
        let (_admission, _in_flight) = self.admit(&principal)?;
        let ctx = self.context(
            &request,
            &principal,
            &request.get_ref().request_id,
            self.events.clone(),
        );
        let body = request.into_inner();
        let agent = self.agent(&body.agent_id)?;
        let input = parse_input(&body.input_json)?;
        // If the client goes away, tonic drops this future, and with it the provider call;
        // the call is then counted (and its run ended in the event log) as it drops.
        let unfinished = UnfinishedCall::new(
            &self.metrics,
            agent.id(),
            started,
            &ctx,
            self.tasks.running_call(),
        );
        // The output as JSON text, written straight from the agent's typed output: the
        // response carries nothing else of it.
        let result = agent.execute_json(&ctx, input).await;
        // One reading for the metrics and the response, so the two agree.
        let total = started.elapsed();
        self.record(
            agent.id(),
            total,
            result.as_ref().map(|done| &done.metadata),
        );
        unfinished.finished();
        let done = result.map_err(|e| status::from_agent_error(&e))?;
        Ok(Response::new(finished(done, total)))
    }

    type ExecuteStreamStream = ReceiverStream<Result<pb::ExecuteStreamEvent, Status>>;

    async fn execute_stream(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStreamStream>, Status> {
        let started = Instant::now();
        let principal = self.authorize_run(
            request.metadata(),
            "request_id",
            &request.get_ref().request_id,
        )?;
        let (admission, in_flight) = self.admit(&principal)?;
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let sink = Arc::new(StreamSink {
            server: self.events.clone(),
            client: sender.clone(),
        });
        let ctx = self.context(&request, &principal, &request.get_ref().request_id, sink);
        let body = request.into_inner();
        let agent = self.agent(&body.agent_id)?;
        let input = parse_input(&body.input_json)?;
        let service = self.clone();
        let run_in_call_span = async move {
            // The stream holds its slot for as long as it runs.
            let _admission = admission;
            let _in_flight = in_flight;
            // Counts a run the client hung up on (or that panicked) as it drops.
            let unfinished = UnfinishedCall::new(
                &service.metrics,
                agent.id(),
                started,
                &ctx,
                service.tasks.running_call(),
            );
            let run = AssertUnwindSafe(agent.execute_json(&ctx, input)).catch_unwind();
            tokio::pin!(run);
            // Stop the run when the client hangs up (the receiver is dropped).
            let result = tokio::select! {
                result = &mut run => result,
                () = sender.closed() => return,
            };
            let Ok(result) = result else {
                // A bug in the run: the stream must not end as if it had succeeded.
                tracing::error!(agent = agent.id(), "an ExecuteStream run panicked");
                service.metrics.record_request(
                    agent.id(),
                    tonic::Code::Internal,
                    started.elapsed(),
                    Duration::ZERO,
                );
                unfinished.finished();
                let _ = sender
                    .send(Err(Status::internal(unfinished::RUN_PANICKED)))
                    .await;
                return;
            };
            let total = started.elapsed();
            service.record(
                agent.id(),
                total,
                result.as_ref().map(|done| &done.metadata),
            );
            unfinished.finished();
            let last = match result {
                Ok(done) => Ok(pb::ExecuteStreamEvent {
                    event: Some(pb::execute_stream_event::Event::Result(finished(
                        done, total,
                    ))),
                }),
                Err(error) => Err(status::from_agent_error(&error)),
            };
            let _ = sender.send(last).await;
        };
        // The run outlives this call's future: it keeps the call's span (and trace) with it.
        tokio::spawn(run_in_call_span.in_current_span());
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn submit_task(
        &self,
        request: Request<pb::SubmitTaskRequest>,
    ) -> Result<Response<pb::SubmitTaskResponse>, Status> {
        let principal =
            self.authorize_run(request.metadata(), "task_id", &request.get_ref().task_id)?;
        let queued = self
            .queue
            .as_ref()
            .is_some_and(|q| q.handles(&request.get_ref().agent_id));
        if !queued
            && let Some(task) = self
                .tasks
                .existing(&request.get_ref().task_id, principal.tenant())
        {
            // A retried submit of a task this tenant has: its state, without taking a slot
            // (the run already holds one).
            return Ok(Response::new(pb::SubmitTaskResponse {
                task_id: task.task_id,
                state: task.state,
            }));
        }
        let (admission, in_flight) = self.admit(&principal)?;
        let ctx = self.context(
            &request,
            &principal,
            &request.get_ref().task_id,
            self.events.clone(),
        );
        let body = request.into_inner();
        let agent = self.agent(&body.agent_id)?;
        let input = parse_input(&body.input_json)?;
        // Refuse bad input now, not after it was queued.
        agent
            .validate_input(&input)
            .map_err(|e| status::from_agent_error(&e))?;
        if let Some(queue) = self.queue.as_ref().filter(|q| q.handles(agent.id())) {
            let response = queue
                .submit(
                    agent.id(),
                    &ctx.request_id,
                    &input,
                    principal.tenant(),
                    &ctx.trace,
                    self.events.as_ref(),
                )
                .await?;
            return Ok(Response::new(response));
        }
        // An inline task runs here, so it holds its global and tenant slots until it ends, as
        // a call does; a queued one gave them back above (the worker that runs it has its own).
        let task_id = self
            .tasks
            .submit(agent, ctx, input, (admission, in_flight))?;
        Ok(Response::new(pb::SubmitTaskResponse {
            task_id,
            state: pb::TaskState::Submitted as i32,
        }))
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let principal = self.authorize(request.metadata(), Role::Read)?;
        let found = self
            .tasks
            .get(&request.get_ref().task_id, principal.tenant());
        if let (Err(_), Some(queue)) = (&found, &self.queue)
            && let Some(task) = queue
                .get(&request.get_ref().task_id, principal.tenant())
                .await?
        {
            return Ok(Response::new(task));
        }
        found.map(Response::new)
    }

    async fn cancel_task(
        &self,
        request: Request<pb::CancelTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let principal = self.authorize(request.metadata(), Role::Execute)?;
        let found = self
            .tasks
            .cancel(&request.get_ref().task_id, principal.tenant());
        if let (Err(_), Some(queue)) = (&found, &self.queue)
            && let Some(task) = queue
                .cancel(&request.get_ref().task_id, principal.tenant())
                .await?
        {
            return Ok(Response::new(task));
        }
        found.map(Response::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use agents_core::MemorySink;
    use tokio_stream::StreamExt as _;

    use super::*;
    use crate::service::test_agents::Broken;

    fn service(panics: bool, events: &MemorySink) -> AgentsService {
        AgentsService::new(
            vec![Arc::new(Broken { panics })],
            Arc::new(crate::no_model::NoModel),
            Arc::new(events.clone()),
        )
    }

    /// The service's metrics, after checking they count one call of `broken` with `code`.
    fn counted_once(service: &AgentsService, code: &str) -> String {
        let text = service.metrics.encode();
        let line = format!(r#"agents_requests_total{{agent="broken",code="{code}"}} 1"#);
        assert!(text.contains(&line), "{text}");
        text
    }

    /// The `agent.failed` events emitted so far.
    fn failed(events: &MemorySink) -> Vec<agents_core::CloudEvent> {
        events
            .events()
            .into_iter()
            .filter(|e| e.event_type == "agent.failed")
            .collect()
    }

    fn call() -> Request<pb::ExecuteRequest> {
        Request::new(pb::ExecuteRequest {
            agent_id: "broken".into(),
            input_json: "{}".into(),
            request_id: "r-1".into(),
        })
    }

    /// A call whose future is dropped mid-run (the client hung up) used to leave no count and
    /// an `agent.started` without an end.
    #[tokio::test]
    async fn a_call_dropped_mid_run_is_counted_cancelled_and_ended_in_the_log() {
        let events = MemorySink::new();
        let service = service(false, &events);
        let dropped =
            tokio::time::timeout(Duration::from_millis(50), service.execute(call())).await;
        assert!(dropped.is_err(), "the run waits until it is cancelled");
        counted_once(&service, "CANCELLED");
        let ended = failed(&events);
        assert_eq!(ended.len(), 1, "{:?}", events.types());
        assert_eq!(ended[0].data["error_kind"], "cancelled");
        assert_eq!(ended[0].data["request_id"], "r-1");
    }

    /// The run's deadline counts from the request's arrival at the front door, where tonic's own
    /// `grpc-timeout` timer starts: a call tonic ends reads as past its deadline, not as a client
    /// that hung up (which it was when the deadline counted from the handler's start).
    #[tokio::test]
    async fn a_call_dropped_at_its_deadline_counted_from_arrival_is_deadline_exceeded() {
        let events = MemorySink::new();
        let service = service(false, &events);
        let mut request = call();
        request
            .metadata_mut()
            .insert("grpc-timeout", "200m".parse().unwrap());
        // It arrived 300 ms ago and waited at the front door since: its 200 ms have passed.
        let arrived = Instant::now() - Duration::from_millis(300);
        request
            .extensions_mut()
            .insert(crate::shed::Arrived(arrived));
        let dropped =
            tokio::time::timeout(Duration::from_millis(50), service.execute(request)).await;
        assert!(dropped.is_err());
        counted_once(&service, "DEADLINE_EXCEEDED");
    }

    /// A unary run that panics (tonic turns it into a reset stream) is counted INTERNAL, not
    /// as a client that went away.
    #[tokio::test]
    async fn a_unary_run_that_panics_is_counted_internal() {
        let events = MemorySink::new();
        let service = service(true, &events);
        let panicked = AssertUnwindSafe(service.execute(call()))
            .catch_unwind()
            .await;
        assert!(panicked.is_err());
        counted_once(&service, "INTERNAL");
        let kinds: Vec<_> = failed(&events)
            .into_iter()
            .map(|e| e.data["error_kind"].clone())
            .collect();
        assert_eq!(kinds, ["internal"]);
    }

    /// A panicking ExecuteStream run used to end the stream as if it had succeeded (status OK,
    /// no result).
    #[tokio::test]
    async fn a_stream_whose_run_panics_ends_with_internal() {
        let events = MemorySink::new();
        let service = service(true, &events);
        let mut stream = service.execute_stream(call()).await.unwrap().into_inner();
        let mut last = None;
        while let Some(message) = stream.next().await {
            last = Some(message);
        }
        let status = last.expect("the stream says how it ended").unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        let text = counted_once(&service, "INTERNAL");
        assert!(!text.contains(r#"code="CANCELLED""#), "{text}");
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "5x", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
