//! Reading JavaScript option objects and numbers for the core, shared by every concept.
//!
//! JS types are checked here (a `TypeError` naming the option in JS spelling); ranges are the
//! core's, checked by its converters and constructors. Clock readings and seeds, which the core
//! takes as `Timestamp` and `u64`, are converted here too.

use std::time::Duration;

use napi::bindgen_prelude::{Object, Unknown};
use napi::{Env, JsValue, ValueType};
use seawall_core::{ConfigError, FieldKind, Timestamp};

use crate::error;

/// Largest integer a JS number holds exactly; seeds and tokens must stay below it.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A clock reading in milliseconds as a core timestamp.
pub fn timestamp(env: &Env, now_ms: f64) -> napi::Result<Timestamp> {
    Timestamp::from_millis_f64(now_ms).ok_or_else(|| error::clock_error(env, now_ms))
}

/// A core duration as the milliseconds JavaScript speaks.
pub fn millis(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A JS option value, sorted by what the config cares about.
pub enum Value<'a> {
    Absent,
    Null,
    Present(Unknown<'a>, ValueType),
}

/// Reads options from one JS object; `prefix` is the JS path of that object (`window.`).
pub struct Options<'a> {
    pub env: &'a Env,
    pub object: Option<Object<'a>>,
    pub prefix: &'static str,
}

impl<'a> Options<'a> {
    /// The options object given to a constructor: `undefined` reads as empty, anything but an
    /// object is a TypeError naming `what`.
    pub fn root(
        env: &'a Env,
        options: Unknown<'a>,
        what: &str,
        prefix: &'static str,
    ) -> napi::Result<Self> {
        let object = match options.get_type()? {
            ValueType::Undefined => None,
            ValueType::Object => Some(options.coerce_to_object()?),
            t => {
                return Err(error::option_type_error(
                    env,
                    what,
                    "an object",
                    type_name(t),
                ));
            }
        };
        Ok(Options {
            env,
            object,
            prefix,
        })
    }

    fn js_name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn get(&self, key: &str) -> napi::Result<Value<'a>> {
        let Some(object) = &self.object else {
            return Ok(Value::Absent);
        };
        // `get` reads the property like `options[key]`: getters and inherited values count.
        match object.get::<Unknown<'a>>(key)? {
            None => Ok(Value::Absent),
            Some(v) => match v.get_type()? {
                ValueType::Undefined => Ok(Value::Absent),
                ValueType::Null => Ok(Value::Null),
                t => Ok(Value::Present(v, t)),
            },
        }
    }

    pub fn type_error(&self, key: &str, expected: &str, got: &str) -> napi::Error {
        error::option_type_error(self.env, &self.js_name(key), expected, got)
    }

    /// A number, `None` when absent; null is refused.
    pub fn number(&self, key: &str) -> napi::Result<Option<f64>> {
        match self.get(key)? {
            Value::Absent => Ok(None),
            Value::Null => Err(self.type_error(key, "a number", "null")),
            Value::Present(v, t) => self.as_number(key, &v, t).map(Some),
        }
    }

    /// A number, or `Some(None)` for an explicit null (the option's "off"); `None` when absent.
    pub fn nullable_number(&self, key: &str) -> napi::Result<Option<Option<f64>>> {
        match self.get(key)? {
            Value::Absent => Ok(None),
            Value::Null => Ok(Some(None)),
            Value::Present(v, t) => self.as_number(key, &v, t).map(|n| Some(Some(n))),
        }
    }

    /// A number that must be given.
    pub fn required_number(&self, key: &str) -> napi::Result<f64> {
        match self.get(key)? {
            Value::Absent => Err(self.type_error(key, "a number", "undefined")),
            Value::Null => Err(self.type_error(key, "a number", "null")),
            Value::Present(v, t) => self.as_number(key, &v, t),
        }
    }

    fn as_number(&self, key: &str, v: &Unknown<'a>, t: ValueType) -> napi::Result<f64> {
        if t != ValueType::Number {
            return Err(self.type_error(key, "a number", type_name(t)));
        }
        v.coerce_to_number()?.get_double()
    }

    /// A nested options object (`window`, `backoff`); `None` when absent.
    pub fn object(&self, key: &str, prefix: &'static str) -> napi::Result<Option<Options<'a>>> {
        match self.get(key)? {
            Value::Absent => Ok(None),
            Value::Null => Err(self.type_error(key, "an object", "null")),
            Value::Present(v, ValueType::Object) => Ok(Some(Options {
                env: self.env,
                object: Some(v.coerce_to_object()?),
                prefix,
            })),
            Value::Present(_, t) => Err(self.type_error(key, "an object", type_name(t))),
        }
    }

    /// A string option (`idleOrder`), `None` when absent; null or another type is a TypeError
    /// saying which strings are `expected`.
    pub fn string(&self, key: &str, expected: &str) -> napi::Result<Option<String>> {
        match self.get(key)? {
            Value::Absent => Ok(None),
            Value::Present(v, ValueType::String) => {
                Ok(Some(v.coerce_to_string()?.into_utf8()?.into_owned()?))
            }
            Value::Present(_, t) => Err(self.type_error(key, expected, type_name(t))),
            Value::Null => Err(self.type_error(key, expected, "null")),
        }
    }

    /// The JS path of an option of this object (`createBackoff.baseMs`).
    pub fn path(&self, key: &str) -> String {
        self.js_name(key)
    }

    /// The `kind` string of a nested object; missing or not a string is a TypeError.
    pub fn kind(&self, expected: &str) -> napi::Result<String> {
        match self.get("kind")? {
            Value::Present(v, ValueType::String) => v.coerce_to_string()?.into_utf8()?.into_owned(),
            Value::Present(_, t) => Err(self.type_error("kind", expected, type_name(t))),
            Value::Null => Err(self.type_error("kind", expected, "null")),
            Value::Absent => Err(self.type_error("kind", expected, "undefined")),
        }
    }
}

pub fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Object => "object",
        ValueType::Function => "function",
        ValueType::External => "external",
        ValueType::BigInt => "bigint",
        ValueType::Unknown => "unknown",
    }
}

/// The core takes any u64 seed but has no converter for host numbers; beyond 2^53 a JS number
/// is no longer the integer the user wrote, so the seed must be a safe integer.
pub fn seed_from_f64(v: f64) -> Result<u64, ConfigError> {
    if v.is_finite() && v.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&v) {
        Ok(v as u64)
    } else {
        Err(ConfigError {
            field: "seed",
            expected: "an integer in [0, 2^53 - 1]",
            got: v.to_string(),
            kind: FieldKind::Number,
        })
    }
}
