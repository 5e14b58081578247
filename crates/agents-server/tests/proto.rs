//! The generated protocol types: they encode, decode, and carry a usable descriptor set.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agents_server::pb;
use prost::Message;

#[test]
fn messages_round_trip_through_protobuf() {
    let response = pb::ExecuteResponse {
        output_json: r#"{"confidence": 0.5}"#.into(),
        metadata: Some(pb::ExecutionMetadata {
            agent_id: "code-analysis".into(),
            fallbacks: vec!["primary".into()],
            prompt_tokens: 10,
            degraded: true,
            ..Default::default()
        }),
    };
    let event = pb::ExecuteStreamEvent {
        event: Some(pb::execute_stream_event::Event::Result(response.clone())),
    };
    let decoded = pb::ExecuteStreamEvent::decode(event.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, event);

    let task = pb::Task {
        task_id: "t1".into(),
        state: pb::TaskState::DeadLettered as i32,
        ..Default::default()
    };
    let decoded = pb::Task::decode(task.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded.state(), pb::TaskState::DeadLettered);
}

#[test]
fn descriptor_set_describes_the_service() {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let file = set
        .file
        .iter()
        .find(|f| f.package() == "agents.v1")
        .unwrap();
    let service = &file.service[0];
    assert_eq!(service.name(), "AgentService");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "ListAgents",
            "DescribeAgent",
            "Execute",
            "ExecuteStream",
            "SubmitTask",
            "GetTask",
            "CancelTask"
        ]
    );
    assert!(
        service
            .method
            .iter()
            .find(|m| m.name() == "ExecuteStream")
            .unwrap()
            .server_streaming()
    );
}
