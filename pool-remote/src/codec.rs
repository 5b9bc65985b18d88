//! JSON in and out of the user's argument and output types. Their `Serialize`, `Deserialize`
//! and `Drop` are user code: a panic in one is an error naming it, like a value serde refuses,
//! never an unwind into the engine's runtime (where it stopped the worker taking jobs) or into
//! a submitter's `submit` or `join`.

use pool_core::{catch_panic, drop_quietly};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `value` as JSON, or why not: serde's error, or the panic of its `Serialize`. The value is
/// dropped quietly either way, so a `Drop` that panics loses nothing once it is encoded.
pub(crate) fn encode<T: Serialize>(value: T) -> Result<serde_json::Value, String> {
    let encoded = catch_panic(|| serde_json::to_value(&value));
    drop_quietly(value);
    settle(encoded, "Serialize")
}

/// A `T` read from `json`, or why not: serde's error, or the panic of `T`'s `Deserialize`.
pub(crate) fn decode<T: DeserializeOwned>(json: serde_json::Value) -> Result<T, String> {
    settle(
        catch_panic(move || serde_json::from_value(json)),
        "Deserialize",
    )
}

fn settle<T>(
    caught: Result<Result<T, serde_json::Error>, String>,
    method: &str,
) -> Result<T, String> {
    match caught {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(refused)) => Err(refused.to_string()),
        Err(panic) => Err(format!("its `{method}` panicked: {panic}")),
    }
}
