//! The layers of `shared/src` as a rule, checked over the sources: only `aws/` names the AWS
//! SDK, and each layer uses only the layers above it (test modules aside).

use std::fs;
use std::path::{Path, PathBuf};

/// Top to bottom; a layer may use the ones before it, never the ones after.
const LAYERS: [&str; 8] = [
    "contract", "plan", "ingest", "job", "port", "fan_in", "aws", "app",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("reading shared/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its comments and its unit-test module.
fn production_code(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("reading a source file");
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn layer_of(relative: &Path) -> Option<usize> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    LAYERS.iter().position(|layer| *layer == first)
}

#[test]
fn only_the_aws_layer_names_the_sdk_and_layers_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 30, "found only {} sources", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&root).expect("under src");
        let code = production_code(path);
        let layer = layer_of(relative);
        let in_aws = layer.is_some_and(|l| LAYERS[l] == "aws");
        for sdk in ["aws_sdk_", "aws_smithy_", "aws_config"] {
            if !in_aws && code.contains(sdk) {
                problems.push(format!("{} names {sdk}*", relative.display()));
            }
        }
        let Some(layer) = layer else { continue };
        for name in &LAYERS[layer + 1..] {
            if code.contains(&format!("crate::{name}::")) {
                problems.push(format!(
                    "{} ({}) uses the lower layer {name}",
                    relative.display(),
                    LAYERS[layer]
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}
