//! The narrated examples in `examples/` run here as tests (each asserts its own numbers), and
//! the README's usage snippets are checked to be lines of these tested examples.
#[path = "../examples/gpu_residency.rs"]
mod gpu_residency;
#[path = "../examples/numexpr_string.rs"]
mod numexpr_string;
#[path = "../examples/seed.rs"]
mod seed;
#[path = "../examples/shapes.rs"]
mod shapes;
#[path = "../examples/softmax.rs"]
mod softmax;

#[test]
fn example_seed() {
    seed::main().unwrap();
}

#[test]
fn example_softmax() {
    softmax::main().unwrap();
}

#[test]
fn example_shapes() {
    shapes::main().unwrap();
}

#[test]
fn example_numexpr_string() {
    numexpr_string::main().unwrap();
}

#[test]
fn example_gpu_residency() {
    gpu_residency::main().unwrap();
}

/// Every line of a ```rust block in the README's "Everyday API" section appears in one of the
/// examples run above (whitespace trimmed), so the README shows tested code.
#[test]
fn readme_usage_snippets_are_tested_example_lines() {
    let readme = include_str!("../README.md");
    let sources = [
        include_str!("../examples/seed.rs"),
        include_str!("../examples/softmax.rs"),
        include_str!("../examples/shapes.rs"),
        include_str!("../examples/numexpr_string.rs"),
        include_str!("../examples/gpu_residency.rs"),
    ];
    let section = readme
        .split("## Everyday API")
        .nth(1)
        .expect("README has an Everyday API section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut checked = 0;
    let mut in_rust = false;
    for line in section.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_rust = t == "```rust";
            continue;
        }
        if in_rust && !t.is_empty() {
            assert!(
                sources.iter().any(|s| s.lines().any(|l| l.trim() == t)),
                "README line not in a tested example: {t}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} lines checked");
}
