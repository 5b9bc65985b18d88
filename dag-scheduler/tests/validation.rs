//! `build()` refuses every malformed graph with an error naming the nodes, and never panics.

use dag_scheduler::{Graph, GraphBuildError, GraphBuilder};

fn chain_builder(edges: &[(&str, &str)], nodes: &[&str]) -> GraphBuilder {
    let mut builder = Graph::builder();
    for &name in nodes {
        let deps: Vec<&str> = edges
            .iter()
            .filter(|(_, to)| *to == name)
            .map(|(from, _)| *from)
            .collect();
        builder.node(name, |_| ()).after_all(deps);
    }
    builder
}

fn build_err(builder: GraphBuilder) -> GraphBuildError {
    builder.build().expect_err("the graph should be refused")
}

#[test]
fn cycle_message_names_the_cycle_in_order() {
    let builder = chain_builder(
        &[
            ("fetch", "a"),
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
        ],
        &["fetch", "a", "b", "c", "d"],
    );
    let err = build_err(builder);
    assert!(err.is_cycle());
    assert_eq!(err.cycle().unwrap(), ["a", "b", "c"]);
    insta::assert_snapshot!(err.to_string(), @"cycle: a -> b -> c -> a");
}

#[test]
fn two_node_cycle_starts_with_the_first_added() {
    let builder = chain_builder(&[("y", "x"), ("x", "y")], &["root", "x", "y"]);
    let err = build_err(builder);
    insta::assert_snapshot!(err.to_string(), @"cycle: x -> y -> x");
}

#[test]
fn cycle_behind_a_long_tail_is_found() {
    // A tail of 1000 nodes hanging off a 3-cycle; the message names only the cycle.
    let mut edges: Vec<(String, String)> = vec![
        ("c1".into(), "c2".into()),
        ("c2".into(), "c3".into()),
        ("c3".into(), "c1".into()),
        ("c3".into(), "t0".into()),
    ];
    for i in 1..1000 {
        edges.push((format!("t{}", i - 1), format!("t{i}")));
    }
    let mut builder = Graph::builder();
    for i in (0..1000).rev() {
        let name = format!("t{i}");
        let deps: Vec<String> = edges
            .iter()
            .filter(|(_, to)| *to == name)
            .map(|(f, _)| f.clone())
            .collect();
        builder.node(name, |_| ()).after_all(deps);
    }
    for name in ["c1", "c2", "c3"] {
        let deps: Vec<String> = edges
            .iter()
            .filter(|(_, to)| to == name)
            .map(|(f, _)| f.clone())
            .collect();
        builder.node(name, |_| ()).after_all(deps);
    }
    let err = build_err(builder);
    insta::assert_snapshot!(err.to_string(), @"cycle: c1 -> c2 -> c3 -> c1");
}

#[test]
fn unknown_dependency_names_both_nodes() {
    let mut builder = Graph::builder();
    builder.node("link", |_| ()).after("compile");
    let err = build_err(builder);
    assert!(err.is_unknown_dependency());
    insta::assert_snapshot!(err.to_string(), @"node `link` depends on unknown node `compile`");
}

#[test]
fn key_of_another_builder_is_an_unknown_dependency() {
    let mut other = Graph::builder();
    other.node("x", |_| ());
    let foreign = other.node("y", |_| ()).key();
    let mut builder = Graph::builder();
    builder.node("a", |_| ()).after(foreign);
    let err = build_err(builder);
    assert!(err.is_unknown_dependency());
    assert_eq!(
        err.to_string(),
        "node `a` depends on a node of another graph builder (index 1)"
    );
}

#[test]
fn duplicate_name_is_named() {
    let mut builder = Graph::builder();
    builder.node("test", |_| ());
    builder.node("build", |_| ());
    builder.node("test", |_| 1);
    let err = build_err(builder);
    assert!(err.is_duplicate_name());
    insta::assert_snapshot!(err.to_string(), @"duplicate node name `test`");
}

#[test]
fn self_dependency_is_named() {
    let mut builder = Graph::builder();
    builder.node("a", |_| ());
    builder.node("loop", |_| ()).after("a").after("loop");
    let err = build_err(builder);
    assert!(err.is_self_dependency());
    assert!(!err.is_cycle());
    insta::assert_snapshot!(err.to_string(), @"node `loop` depends on itself");
}

#[test]
fn self_dependency_by_key_is_named() {
    let mut builder = Graph::builder();
    let node = builder.node("me", |_| ());
    let key = node.key();
    node.after(key);
    assert!(build_err(builder).is_self_dependency());
}

#[test]
fn repeated_dependency_is_one_edge() {
    let mut builder = Graph::builder();
    let a = builder.node("a", |_| ()).key();
    builder.node("b", |_| ()).after(a).after("a").after(a);
    let graph = builder.build().unwrap();
    assert_eq!(graph.dependencies("b").unwrap(), ["a"]);
    assert!(graph.run(&pool_core::InlineExecutor).is_success());
}

#[test]
fn errors_are_clonable_comparable_and_debuggable() {
    let mut builder = Graph::builder();
    builder.node("a", |_| ()).after("zzz");
    let err = build_err(builder);
    assert_eq!(err.clone(), err);
    assert!(format!("{err:?}").contains("zzz"));
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().contains("zzz"));
}

#[test]
fn empty_graph_builds_and_runs() {
    let graph = Graph::builder().build().unwrap();
    let report = graph.run(&pool_core::InlineExecutor);
    assert!(report.is_empty());
    assert!(report.is_success());
    assert!(report.critical_path().is_empty());
}

#[test]
fn a_graph_over_the_node_limit_is_a_typed_error_and_stores_nothing_past_it() {
    use std::sync::Arc;
    let captured = Arc::new(());
    let mut builder = Graph::builder().node_limit(3);
    let mut keys = Vec::new();
    for i in 0..5 {
        let held = Arc::clone(&captured);
        let node = builder.node(format!("n{i}"), move |_| drop(Arc::clone(&held)));
        let node = match keys.last() {
            Some(&previous) => node.after(previous).run_even_if_failed(),
            None => node,
        };
        keys.push(node.key());
    }
    // The two nodes past the limit were dropped at once (their closures with them).
    assert_eq!(Arc::strong_count(&captured), 1 + 3);
    assert_eq!(builder.len(), 5);
    let err = build_err(builder);
    assert!(err.is_too_many_nodes());
    assert!(!err.is_cycle() && !err.is_duplicate_name() && !err.is_unknown_dependency());
    assert_eq!(err.to_string(), "too many nodes: 5 (at most 3)");
    assert_eq!(Arc::strong_count(&captured), 1);
}

#[test]
fn a_graph_at_the_node_limit_builds() {
    let mut builder = Graph::builder().node_limit(2);
    let a = builder.node("a", |_| ()).key();
    builder.node("b", |_| ()).after(a);
    assert_eq!(builder.build().expect("at the limit").len(), 2);
    assert!(Graph::builder().node_limit(0).build().is_ok());
}

/// A `Display` that writes part of a name, then panics or returns an error.
struct BrokenName {
    panics: bool,
}

impl std::fmt::Display for BrokenName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("half a name")?;
        if self.panics {
            panic!("hostile name");
        }
        Err(std::fmt::Error)
    }
}

#[test]
fn names_from_format_args_are_written_in_place_and_found() {
    let mut builder = GraphBuilder::with_capacity(3);
    let greeting = "hello";
    builder.node(format_args!("{greeting}, world"), |_| ());
    builder.node(format_args!("static"), |_| ());
    builder
        .node(format_args!("n{}", 7), |_| ())
        .after("hello, world")
        .after("static");
    let graph = builder.build().unwrap();
    assert_eq!(
        graph.names().collect::<Vec<_>>(),
        ["hello, world", "static", "n7"]
    );
    assert_eq!(
        graph.dependencies("n7").unwrap(),
        ["hello, world", "static"]
    );
}

#[test]
fn a_name_whose_display_fails_or_panics_is_a_typed_error_naming_the_node() {
    test_kit::quiet_panics(|message| message == "hostile name");
    for (panics, problem) in [
        (false, "a Display impl returned an error"),
        (true, "panicked: hostile name"),
    ] {
        let mut builder = Graph::builder();
        builder.node("a", |_| ());
        let bad = builder
            .node(format_args!("{}", BrokenName { panics }), |_| ())
            .after("a")
            .key();
        assert_eq!(bad.index(), 1);
        // The builder stays whole: the next node's name is not glued to the partial text.
        builder.node("c", |_| ()).after(bad);
        assert_eq!(builder.len(), 3);
        let err = build_err(builder);
        assert_eq!(
            err.to_string(),
            format!("the name of node #1 could not be formatted: {problem}")
        );
    }
}

/// A name type whose `AsRef<str>` panics.
struct PanickingName;

impl AsRef<str> for PanickingName {
    fn as_ref(&self) -> &str {
        panic!("hostile name")
    }
}

/// Invariant: a borrowed name's `AsRef<str>` is user code too; its panic is the same typed error
/// as a `Display`'s, and the node's closure, whose capture panics on drop here, is kept (then
/// dropped quietly with the builder). Before, the panic unwound out of `node`, dropping the closure
/// on the way: SIGABRT.
#[test]
fn a_name_whose_as_ref_panics_is_a_typed_error_naming_the_node() {
    test_kit::quiet_panics(|message| message == "hostile name");
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fuse = test_kit::Fuse::new(&dropped);
    let mut builder = Graph::builder();
    builder.node("a", |_| ());
    let added = test_kit::no_unwind(|| {
        builder
            .node(&PanickingName, move |_| {
                let _held = &fuse;
            })
            .after("a")
            .key()
            .index()
    });
    assert_eq!(added, Some(1), "the panic unwound out of `node`");
    builder.node("c", |_| ());
    let err = test_kit::no_unwind(|| build_err(builder)).expect("no unwind out of build");
    assert_eq!(
        err.to_string(),
        "the name of node #1 could not be formatted: panicked: hostile name"
    );
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A capacity is a hint: one past memory is not taken (it panicked on the capacity overflow),
/// and the builder works as one made with `Graph::builder()`.
#[test]
fn a_capacity_past_memory_is_a_hint_not_taken() {
    // Sizes whose arrays overflow the address space, so that no allocator is asked (under
    // ASan or valgrind, a request for terabytes is itself reported).
    for nodes in [usize::MAX, usize::MAX / 2] {
        let mut builder = GraphBuilder::with_capacity(nodes);
        let a = builder.node("a", |_| 1).key();
        builder.node("b", move |cx| cx.get(a).copied()).after(a);
        assert_eq!(builder.build().unwrap().len(), 2);
    }
}

#[test]
fn every_string_type_names_a_node() {
    use std::borrow::Cow;
    use std::rc::Rc;
    use std::sync::Arc;
    let owned = String::from("by ref");
    let names: Vec<&str> = vec!["from a vec"];
    let by_ref_ref: &&str = &names[0];
    let mut builder = Graph::builder();
    builder.node("literal", |_| ());
    builder.node(&owned, |_| ());
    builder.node(by_ref_ref, |_| ());
    builder.node(String::from("owned"), |_| ());
    builder.node(Box::<str>::from("boxed"), |_| ());
    builder.node(Cow::Borrowed("cow"), |_| ());
    builder.node(Arc::<str>::from("arc"), |_| ());
    builder.node(Rc::<str>::from("rc"), |_| ());
    let graph = builder.build().unwrap();
    assert_eq!(
        graph.names().collect::<Vec<_>>(),
        [
            "literal",
            "by ref",
            "from a vec",
            "owned",
            "boxed",
            "cow",
            "arc",
            "rc"
        ]
    );
}
