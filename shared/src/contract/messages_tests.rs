use super::*;

#[test]
fn batch_message_round_trips() {
    let message = BatchMessage {
        job_id: "j".into(),
        batch: BatchNo(3),
        bucket: "b".into(),
        work: Work::Objects {
            keys: vec!["data/a.csv".into(), "data/\"odd\".csv".into()],
        },
        schema: Some(Schema::sensor()),
        format: None,
        table: None,
        report: ReportLocation {
            bucket: "b".into(),
            prefix: "_rejects/".into(),
        },
        write: WriteOptions::default(),
        resumed: None,
    };
    let parsed: BatchMessage = serde_json::from_str(&message.to_json()).unwrap();
    assert_eq!(parsed, message);
    let json: serde_json::Value = serde_json::from_str(&message.to_json()).unwrap();
    assert_eq!(json["v"], BATCH_MESSAGE_VERSION);
    assert_eq!(json["work"]["objects"]["keys"][1], "data/\"odd\".csv");
    let range = RangeTask {
        key: "data/big.csv".into(),
        etag: "\"abc\"".into(),
        start: 1 << 20,
        end: 2 << 20,
        header: vec!["a".into(), "b".into()],
        rows: Some(RowSpan {
            first: (1 << 20) + 7,
            stop: (2 << 20) + 3,
        }),
        header_end: None,
    };
    let ranged = BatchMessage {
        work: Work::Range(range.clone()),
        ..message.clone()
    };
    let parsed: BatchMessage = serde_json::from_str(&ranged.to_json()).unwrap();
    assert_eq!(parsed, ranged);
    assert_eq!(parsed.units().len(), 1);
    let scan = BatchMessage {
        work: Work::Scan(ScanTask {
            object: SplitObject {
                key: "data/big.csv".into(),
                etag: "\"abc\"".into(),
                header: vec!["a".into()],
                data_start: 2,
                size: 100,
                chunk: 10,
                first_batch: 0,
                by_lines: false,
                header_in_object: false,
            },
            index: 3,
        }),
        ..message.clone()
    };
    let parsed: BatchMessage = serde_json::from_str(&scan.to_json()).unwrap();
    assert_eq!(parsed, scan);
    assert!(parsed.units().is_empty(), "a scan loads nothing");
    let export = BatchMessage {
        work: Work::Export {
            keys: vec!["AWSDynamoDB/x/data/a.json.gz".into()],
            files: ExportFiles {
                item_counts: [("AWSDynamoDB/x/data/a.json.gz".to_string(), 4)].into(),
                md5s: [(
                    "AWSDynamoDB/x/data/a.json.gz".to_string(),
                    "1B2M2Y8AsgTpgAmY7PhCfg==".to_string(),
                )]
                .into(),
                incremental: true,
                phase: 1,
                phase_end: 7,
                next_phase: Some(2),
            },
        },
        ..message.clone()
    };
    let parsed: BatchMessage = serde_json::from_str(&export.to_json()).unwrap();
    assert_eq!(parsed, export);
    let continued = BatchMessage {
        work: Work::Objects {
            keys: vec!["data/c.csv".into()],
        },
        resumed: Some(Resumed {
            part: 2,
            carried: BatchStats {
                rows_written: 7,
                bytes: 99,
                ..BatchStats::default()
            },
            ranges: vec![range],
            tails: vec![ObjectTail {
                key: "data/d.csv.gz".into(),
                etag: "\"e\"".into(),
                rows_done: 40,
            }],
            row_groups: Vec::new(),
        }),
        ..message
    };
    let parsed: BatchMessage = serde_json::from_str(&continued.to_json()).unwrap();
    assert_eq!(parsed, continued);
    assert_eq!(parsed.part(), 2);
    let keys: Vec<String> = parsed.units().iter().map(|w| w.key().to_owned()).collect();
    assert_eq!(keys, ["data/c.csv", "data/big.csv", "data/d.csv.gz"]);
}

/// Version 1 messages (no `"v"`: the optional fields of coordinators before the work
/// enum) are read as the work they meant; unknown versions and mixed shapes are refused.
#[test]
fn version_1_messages_are_read_and_other_versions_refused_with_the_reason() {
    let context = r#""job_id":"j","batch":1,"bucket":"b","report":{"bucket":"b","prefix":"p/"}"#;
    let v1 = |fields: &str| -> BatchMessage {
        serde_json::from_str(&format!("{{{context},{fields}}}")).unwrap()
    };
    let range = v1(r#""range":{"key":"k","etag":"e","start":5,"end":9,"header":["a"]}"#);
    assert!(matches!(&range.work, Work::Range(task) if task.key == "k" && task.rows.is_none()));
    let keys = v1(r#""keys":["a.csv","b.csv"],"write_mode":"insert""#);
    assert_eq!(keys.work.keys(), ["a.csv", "b.csv"]);
    assert_eq!(
        keys.write.write_mode,
        crate::contract::write::WriteMode::Insert
    );
    let scan = v1(
        r#""keys":[],"scan":{"object":{"key":"k","etag":"e","header":[],"data_start":0,"size":9,"chunk":3},"index":2}"#,
    );
    assert_eq!(scan.work.scan().map(|s| s.index), Some(2));
    let export = v1(r#""keys":["d/a.json.gz"],"export":{"item_counts":{"d/a.json.gz":3}}"#);
    assert_eq!(export.work.export().unwrap().item_counts["d/a.json.gz"], 3);
    assert_eq!(export.work.keys(), ["d/a.json.gz"]);
    let groups = v1(
        r#""row_groups":{"key":"p.parquet","etag":"e","size":99,"footer_start":90,"first_group":0,"stop_group":2,"start":4,"end":80}"#,
    );
    assert!(matches!(groups.work, Work::RowGroups(ref g) if g.stop_group == 2));
    let carried = serde_json::to_string(&BatchStats {
        rows_written: 3,
        ..BatchStats::default()
    })
    .unwrap();
    let continued = v1(&format!(
        r#""keys":["c.csv"],"resumed":{{"part":1,"carried":{carried},"tails":[{{"key":"t.csv.gz","etag":"e","rows_done":2}}]}}"#
    ));
    assert_eq!(continued.part(), 1);
    assert_eq!(continued.units().len(), 2);
    // Written again, a version 1 message becomes version 2 with the same meaning.
    let again: BatchMessage = serde_json::from_str(&continued.to_json()).unwrap();
    assert_eq!(again, continued);

    let refused = |body: String| -> String {
        serde_json::from_str::<BatchMessage>(&body)
            .unwrap_err()
            .to_string()
    };
    let newer = refused(format!(
        r#"{{"v":3,{context},"work":{{"objects":{{"keys":[]}}}}}}"#
    ));
    assert!(
        newer.contains("version 3 is not one this worker reads"),
        "{newer}"
    );
    let mixed = refused(format!(
        r#"{{"v":2,{context},"work":{{"objects":{{"keys":["a"]}}}},"keys":["b"]}}"#
    ));
    assert!(mixed.contains("names its work in \"work\" only"), "{mixed}");
    let lacking = refused(format!(r#"{{"v":2,{context}}}"#));
    assert!(lacking.contains("lacks its \"work\""), "{lacking}");
    let unknown = refused(format!(r#"{{"v":2,{context},"work":{{"sideways":{{}}}}}}"#));
    assert!(unknown.contains("sideways"), "{unknown}");
}

#[test]
fn control_messages_are_told_apart() {
    let continuation: ControlMessage =
        serde_json::from_str(r#"{"job_id":"j","invocation":2}"#).unwrap();
    assert!(matches!(continuation, ControlMessage::Continue(ref c) if c.invocation == 2));
    let compose = ControlMessage::Compose(ComposeRanges {
        job_id: "j".into(),
        compose: SplitObject {
            key: "k".into(),
            etag: "e".into(),
            header: vec![],
            data_start: 1,
            size: 2,
            chunk: 1,
            first_batch: 0,
            by_lines: false,
            header_in_object: true,
        },
    });
    let json = serde_json::to_string(&compose).unwrap();
    assert_eq!(
        serde_json::from_str::<ControlMessage>(&json).unwrap(),
        compose
    );
}

/// The sample events in `events/` are the ones `cargo lambda invoke --data-file` sends.
#[test]
fn sample_events_parse() {
    let request: JobRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job.json")).unwrap();
    assert_eq!(request.prefix, "data/");
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../../events/sqs-batch.json")).unwrap();
    let body = event.records[0].body.as_deref().unwrap();
    let batch: BatchMessage = serde_json::from_str(body).unwrap();
    assert_eq!(batch.work.keys().len(), 2);
    assert_eq!(batch.schema, None);
    let poison: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../../events/sqs-poison.json")).unwrap();
    let body = poison.records[0].body.as_deref().unwrap();
    assert!(serde_json::from_str::<BatchMessage>(body).is_err());
    let large: JobRequest =
        serde_json::from_str(include_str!("../../../events/large-object-job.json")).unwrap();
    assert_eq!(large.key.as_deref(), Some("data/large/sensor-000000.csv"));
    let custom: JobRequest = serde_json::from_str(include_str!(
        "../../../events/prefix-job-custom-schema.json"
    ))
    .unwrap();
    custom.schema.unwrap().validate().unwrap();
    assert!(custom.tolerated_rejects.is_some());
}

#[test]
fn the_jsonl_sample_parses_with_its_format_and_batches_carry_it() {
    use crate::contract::format::Format;
    let jsonl: JobRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job-jsonl.json")).unwrap();
    assert_eq!(jsonl.format, Some(Format::JsonLines));
    jsonl.schema.unwrap().validate().unwrap();
    let typed: JobRequest = serde_json::from_str(include_str!(
        "../../../events/prefix-job-dynamodb-json.json"
    ))
    .unwrap();
    assert_eq!(typed.format, Some(Format::DynamoDbJson));
    assert!(typed.schema.is_none(), "the table's key is the schema");
    let export: JobRequest =
        serde_json::from_str(include_str!("../../../events/export-job.json")).unwrap();
    let names = export.export.unwrap();
    assert!(names.names()[0].ends_with("manifest-summary.json"));
    let incremental: JobRequest =
        serde_json::from_str(include_str!("../../../events/export-incremental-job.json")).unwrap();
    assert!(incremental.export.unwrap().names()[0].ends_with('/'));
    // A chain: a list of exports, applied in its order.
    let chain: JobRequest =
        serde_json::from_str(include_str!("../../../events/export-chain-job.json")).unwrap();
    let chain = chain.export.unwrap();
    assert_eq!(chain.names().len(), 3, "{chain:?}");
    assert!(matches!(
        chain,
        crate::contract::messages::ExportNames::Chain(_)
    ));
    // A single name stays a string on the wire (job items written before chains read).
    let one = serde_json::to_value(crate::contract::messages::ExportNames::from("a/")).unwrap();
    assert_eq!(one, serde_json::json!("a/"));
    let inventory: JobRequest =
        serde_json::from_str(include_str!("../../../events/inventory-job.json")).unwrap();
    assert!(
        inventory
            .inventory
            .inventory
            .unwrap()
            .ends_with("manifest.json")
    );
    assert_eq!(
        inventory.inventory.inventory_key_suffix.as_deref(),
        Some(".csv.gz")
    );
    assert_eq!(inventory.prefix, "");
    // Absent on the wire means "by suffix", and an older message still parses.
    let plain: JobRequest = serde_json::from_str(r#"{"bucket": "b"}"#).unwrap();
    assert_eq!(plain.format, None);
    assert!(!serde_json::to_string(&plain).unwrap().contains("format"));
    let bad = serde_json::from_str::<JobRequest>(r#"{"bucket": "b", "format": "xml"}"#);
    assert!(bad.is_err());
}

#[test]
fn the_dialect_samples_parse_validate_and_carry_their_dialect() {
    for (text, delimiter, header) in [
        (
            include_str!("../../../events/prefix-job-semicolon.json"),
            b';',
            true,
        ),
        (
            include_str!("../../../events/prefix-job-headerless-tsv.json"),
            b'\t',
            false,
        ),
    ] {
        let request: JobRequest = serde_json::from_str(text).unwrap();
        let schema = request.schema.unwrap();
        schema.validate().unwrap();
        assert_eq!(
            (schema.csv.delimiter, schema.csv.header),
            (delimiter, header)
        );
    }
}

/// One sample per write control option: modes, both cap forms, TTL and empty values.
#[test]
fn write_control_samples_parse_and_validate() {
    use crate::contract::schema::EmptyValue;
    use crate::contract::write::{WriteMode, WriteRate};
    let job = |text: &str| -> JobRequest {
        let request: JobRequest = serde_json::from_str(text).unwrap();
        request.write.validate().unwrap();
        if let Some(schema) = &request.schema {
            schema.validate().unwrap();
        }
        request
    };
    let insert = job(include_str!("../../../events/job-insert-capped.json"));
    assert_eq!(insert.write.write_mode, WriteMode::Insert);
    assert_eq!(insert.write.max_write_rate, Some(WriteRate::Units(400.0)));
    let update = job(include_str!(
        "../../../events/job-update-share-of-capacity.json"
    ));
    assert_eq!(update.write.write_mode, WriteMode::Update);
    assert!(matches!(
        update.write.max_write_rate,
        Some(WriteRate::Share {
            on_demand_units: Some(_),
            ..
        })
    ));
    let delete = job(include_str!("../../../events/job-delete-keys.json"));
    assert_eq!(delete.write.write_mode, WriteMode::Delete);
    let ttl = job(include_str!(
        "../../../events/job-ttl-and-empty-values.json"
    ));
    let schema = ttl.schema.unwrap();
    assert_eq!(schema.empty_values, EmptyValue::Null);
    assert_eq!(schema.empty_value_of("device"), EmptyValue::EmptyString);
    assert_eq!(schema.ttl.unwrap().column.as_deref(), Some("valid_until"));
    let after = job(include_str!("../../../events/job-ttl-after-load.json"));
    assert_eq!(
        after.schema.unwrap().recomputed_attribute(),
        Some("expires_at")
    );
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../../events/sqs-batch-insert-capped.json")).unwrap();
    let batch: BatchMessage =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(batch.write.write_mode, WriteMode::Insert);
    assert_eq!(batch.write.write_units_per_second, Some(400.0));
    // Written back, the options stay flat beside the other fields.
    let json: serde_json::Value = serde_json::from_str(&batch.to_json()).unwrap();
    assert_eq!(json["write_mode"], "insert");
}

#[test]
fn coordinator_requests_are_told_apart_by_shape() {
    let check: CoordinatorRequest =
        serde_json::from_str(include_str!("../../../events/check-stuck-jobs.json")).unwrap();
    assert_eq!(
        check,
        CoordinatorRequest::CheckStuckJobs {
            check_stuck_jobs: StuckJobCheck {
                older_than_seconds: 3600
            }
        }
    );
    let job: CoordinatorRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job.json")).unwrap();
    assert!(matches!(job, CoordinatorRequest::Job(ref r) if r.prefix == "data/"));
    let s3: CoordinatorRequest =
        serde_json::from_str(include_str!("../../../events/s3-put-marker.json")).unwrap();
    assert!(matches!(s3, CoordinatorRequest::S3(ref e) if e.records.len() == 1));
    let one: CoordinatorRequest =
        serde_json::from_str(r#"{"bucket": "b", "key": "data/big.csv"}"#).unwrap();
    assert!(
        matches!(one, CoordinatorRequest::Job(ref r) if r.key.as_deref() == Some("data/big.csv"))
    );
    assert!(
        serde_json::from_str::<CoordinatorRequest>(r#"{"prefix": "x/"}"#).is_err(),
        "no bucket"
    );
    let control: CoordinatorRequest =
        serde_json::from_str(include_str!("../../../events/sqs-continue-listing.json")).unwrap();
    let CoordinatorRequest::Control(event) = control else {
        panic!("an SQS event is a control event: {control:?}");
    };
    let body = event.records[0].body.as_deref().unwrap();
    let continuation: ContinueListing = serde_json::from_str(body).unwrap();
    assert_eq!(continuation.invocation, 3);
    let phase: CoordinatorRequest =
        serde_json::from_str(include_str!("../../../events/sqs-export-phase.json")).unwrap();
    let CoordinatorRequest::Control(event) = phase else {
        panic!("an SQS event is a control event: {phase:?}");
    };
    let body = event.records[0].body.as_deref().unwrap();
    let step: crate::contract::messages::ControlMessage = serde_json::from_str(body).unwrap();
    assert!(
        matches!(step, crate::contract::messages::ControlMessage::ExportPhase(ref s) if s.export_phase == 1),
        "{step:?}"
    );
    // The other control messages are not read as a phase step.
    let wake: crate::contract::messages::ControlMessage =
        serde_json::from_str(r#"{"job_id":"j","invocation":2}"#).unwrap();
    assert!(matches!(
        wake,
        crate::contract::messages::ControlMessage::Continue(_)
    ));
}

#[test]
fn prefix_defaults_to_the_whole_bucket() {
    let request: JobRequest = serde_json::from_str(r#"{"bucket":"b"}"#).unwrap();
    assert_eq!(request, JobRequest::new("b", ""));
}

mod inventory_wire_tests {
    use super::*;
    use crate::contract::inventory::{EmitPlan, InventoryFile, KeyFilter};

    #[test]
    fn inventory_work_round_trips_under_its_own_names() {
        let file = InventoryFile {
            manifest: "inv/manifest.json".into(),
            index: 1,
            files: 3,
            key: "inv/data/0001.csv.gz".into(),
            size: 99,
            md5: "00".into(),
            parquet: false,
            schema: "Bucket, Key, Size".into(),
            source_bucket: "src".into(),
            filter: KeyFilter::default(),
            batch_size: 100,
            batch_bytes: 1 << 24,
        };
        let emit = Work::Inventory(InventoryTask {
            file,
            emit: Some(EmitPlan {
                base: 6,
                batches: 4,
                etag: "\"e\"".into(),
                next: 2,
            }),
        });
        let keys = Work::InventoryObjects {
            keys: vec!["data/a b.csv".into()],
        };
        for work in [emit, keys] {
            let message = BatchMessage {
                job_id: "j".into(),
                batch: BatchNo(4),
                bucket: "b".into(),
                work,
                schema: None,
                format: None,
                table: None,
                report: ReportLocation {
                    bucket: "b".into(),
                    prefix: "_rejects/".into(),
                },
                write: WriteOptions::default(),
                resumed: None,
            };
            let json: serde_json::Value = serde_json::from_str(&message.to_json()).unwrap();
            let name = json["work"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone();
            assert!(
                ["inventory", "inventory_objects"].contains(&name.as_str()),
                "{json}"
            );
            let parsed: BatchMessage = serde_json::from_str(&message.to_json()).unwrap();
            assert_eq!(parsed, message);
        }
        let listed = Work::InventoryObjects {
            keys: vec!["k".into()],
        };
        assert!(listed.listed_by_inventory() && listed.keys() == ["k"]);
        assert!(!Work::Objects { keys: vec![] }.listed_by_inventory());
    }
}

mod inflate_wire_tests {
    use super::*;

    #[test]
    fn inflate_work_round_trips_under_its_own_names_and_maps_part_positions() {
        let part = PartTask {
            source: "in/big.csv.gz".into(),
            index: 3,
            offset: 1000,
            data_start: 8,
            line: 41,
            range: RangeTask {
                key: "_rejects/j/inflate/000004/part-000003.csv".into(),
                etag: String::new(),
                start: 8,
                end: 500,
                header: vec!["id".into(), "note".into()],
                rows: Some(RowSpan {
                    first: 8,
                    stop: 500,
                }),
                header_end: None,
            },
        };
        // Byte 8 of the part is its first record, decoded byte 1000 of the object, line 41.
        assert_eq!(part.source_offset(8), 1000);
        assert_eq!(part.source_offset(20), 1012);
        assert_eq!((part.source_line(1), part.source_line(3)), (41, 43));
        assert_eq!(part.source_line(0), 0, "an object reject stays line 0");
        let inflate = Work::Inflate(InflateTask {
            key: "in/big.csv.gz".into(),
            etag: "\"e\"".into(),
            size: 123,
            part_bytes: 64,
            next: Some(InflateNext {
                part: 2,
                offset: 130,
                line: 9,
            }),
        });
        for (work, name) in [
            (inflate, "inflate"),
            (Work::InflatedPart(part), "inflated_part"),
        ] {
            let message = BatchMessage {
                job_id: "j".into(),
                batch: BatchNo(4),
                bucket: "b".into(),
                work,
                schema: None,
                format: None,
                table: None,
                report: ReportLocation {
                    bucket: "b".into(),
                    prefix: "_rejects/".into(),
                },
                write: WriteOptions::default(),
                resumed: None,
            };
            let json: serde_json::Value = serde_json::from_str(&message.to_json()).unwrap();
            assert!(json["work"].get(name).is_some(), "{json}");
            assert_eq!(json["v"], BATCH_MESSAGE_VERSION);
            let parsed: BatchMessage = serde_json::from_str(&message.to_json()).unwrap();
            assert_eq!(parsed, message);
            assert!(parsed.work.keys().is_empty());
        }
    }
}
