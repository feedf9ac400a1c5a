//! Dispatch: the `ApiKey` enum, the `Request`/`Response` impls and the
//! `RequestKind`/`ResponseKind` enums over every API.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::spec::{Spec, Versions};

/// Writes a method whose body is one `match` with the given arms.
fn match_fn(out: &mut String, doc: &str, signature: &str, scrutinee: &str, arms: Vec<String>) {
    let _ = writeln!(out, "    /// {doc}");
    let _ = writeln!(out, "    {signature} {{\n        match {scrutinee} {{");
    for arm in arms {
        let _ = writeln!(out, "            {arm},");
    }
    let _ = writeln!(out, "        }}\n    }}\n");
}

pub fn gen_api_keys(specs: &[Spec], out: &mut String) {
    let mut requests: BTreeMap<i16, &Spec> = BTreeMap::new();
    let mut responses: BTreeMap<i16, &Spec> = BTreeMap::new();
    for s in specs {
        match (s.kind.as_str(), s.api_key) {
            ("request", Some(k)) => {
                assert!(requests.insert(k, s).is_none(), "duplicate request key {k}");
            }
            ("response", Some(k)) => {
                assert!(
                    responses.insert(k, s).is_none(),
                    "duplicate response key {k}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        requests.keys().collect::<Vec<_>>(),
        responses.keys().collect::<Vec<_>>(),
        "every request needs a response"
    );
    let variant = |s: &Spec| {
        s.name
            .trim_end_matches("Request")
            .trim_end_matches("Response")
            .to_string()
    };

    let _ = writeln!(out, "/// Every API key the vendored Kafka specs define.");
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]"
    );
    let _ = writeln!(out, "#[non_exhaustive]");
    let _ = writeln!(out, "pub enum ApiKey {{");
    for (k, s) in &requests {
        let _ = writeln!(
            out,
            "    /// `{}` (key {k}).",
            s.name.trim_end_matches("Request")
        );
        let _ = writeln!(out, "    {} = {k},", variant(s));
    }
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(out, "impl ApiKey {{");
    let _ = writeln!(out, "    /// All API keys, in key order.");
    let _ = writeln!(out, "    pub const ALL: &'static [ApiKey] = &[");
    for s in requests.values() {
        let _ = writeln!(out, "        ApiKey::{},", variant(s));
    }
    let _ = writeln!(out, "    ];\n");
    let _ = writeln!(out, "    /// Looks up an API key by its number.");
    let _ = writeln!(
        out,
        "    pub fn from_key(key: i16) -> ::std::option::Option<ApiKey> {{\n        match key {{"
    );
    for (k, s) in &requests {
        let _ = writeln!(out, "            {k} => Some(ApiKey::{}),", variant(s));
    }
    let _ = writeln!(out, "            _ => None,\n        }}\n    }}\n");
    let _ = writeln!(out, "    /// The API key's number on the wire.");
    let _ = writeln!(out, "    pub fn key(self) -> i16 {{ self as i16 }}\n");
    let api_arms = |f: &dyn Fn(&Spec) -> String| -> Vec<String> {
        requests
            .values()
            .map(|s| format!("ApiKey::{} => {}", variant(s), f(s)))
            .collect()
    };
    let range = |v: Versions| format!("VersionRange::new({}, {})", v.min, v.max);
    match_fn(
        out,
        "The API's name as Kafka spells it (`Produce`, `Fetch`, ...).",
        "pub fn name(self) -> &'static str",
        "self",
        api_arms(&|s| format!("{:?}", variant(s))),
    );
    match_fn(
        out,
        "The versions of this API's request and response the specs define.",
        "pub fn valid_versions(self) -> VersionRange",
        "self",
        api_arms(&|s| range(s.valid)),
    );
    match_fn(
        out,
        "The versions this client is willing to send: the valid versions without\n/// a latest version the spec marks as unstable.",
        "pub fn stable_versions(self) -> VersionRange",
        "self",
        api_arms(&|s| {
            let max = if s.latest_unstable { s.valid.max - 1 } else { s.valid.max };
            range(Versions { min: s.valid.min, max })
        }),
    );
    match_fn(
        out,
        "The request versions that use the flexible encoding.",
        "pub fn flexible_versions(self) -> VersionRange",
        "self",
        api_arms(&|s| range(s.flexible)),
    );
    match_fn(
        out,
        "The response versions that use the flexible encoding.",
        "pub fn response_flexible_versions(self) -> VersionRange",
        "self",
        api_arms(&|s| range(responses[&s.api_key.expect("request key")].flexible)),
    );
    let _ = writeln!(out, "}}\n");

    // Request / Response traits.
    for (k, s) in &requests {
        let resp = responses[k];
        let _ = writeln!(out, "impl Request for {} {{", s.name);
        let _ = writeln!(out, "    const API_KEY: ApiKey = ApiKey::{};", variant(s));
        let _ = writeln!(out, "    type Response = {};", resp.name);
        let _ = writeln!(out, "}}");
        let _ = writeln!(out, "impl Response for {} {{", resp.name);
        let _ = writeln!(out, "    const API_KEY: ApiKey = ApiKey::{};", variant(s));
        let _ = writeln!(out, "}}");
    }

    // Dispatch enums.
    for (kind, map) in [("Request", &requests), ("Response", &responses)] {
        let _ = writeln!(out, "/// Any {} body, tagged by API.", kind.to_lowercase());
        let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
        let _ = writeln!(out, "#[non_exhaustive]");
        let _ = writeln!(out, "pub enum {kind}Kind {{");
        for s in map.values() {
            let _ = writeln!(out, "    /// A `{}`.", s.name);
            let _ = writeln!(out, "    {}({}),", variant(s), s.name);
        }
        let _ = writeln!(out, "}}\n");
        let _ = writeln!(out, "impl {kind}Kind {{");
        let arms =
            |f: &dyn Fn(&Spec) -> String| -> Vec<String> { map.values().map(|s| f(s)).collect() };
        match_fn(
            out,
            "The API this body belongs to.",
            "pub fn api_key(&self) -> ApiKey",
            "self",
            arms(&|s| format!("{kind}Kind::{0}(_) => ApiKey::{0}", variant(s))),
        );
        match_fn(
            out,
            if kind == "Response" { "Encodes the body (without header) in `version`.\n    #[inline]" } else { "Encodes the body (without header) in `version`." },
            "pub fn encode(&self, buf: &mut ::bytes::BytesMut, version: i16) -> ::std::result::Result<(), EncodeError>",
            "self",
            arms(&|s| format!("{kind}Kind::{}(m) => m.encode(buf, version)", variant(s))),
        );
        match_fn(
            out,
            if kind == "Response" {
                "The exact number of bytes [`Self::encode`] writes in `version`.\n    #[inline]"
            } else {
                "The exact number of bytes [`Self::encode`] writes in `version`."
            },
            "pub fn encoded_len(&self, version: i16) -> usize",
            "self",
            arms(&|s| format!("{kind}Kind::{}(m) => m.encoded_len(version)", variant(s))),
        );
        match_fn(
            out,
            if kind == "Request" { "Decodes a body (without header) of API `api_key` in `version`.\n    #[inline]" } else { "Decodes a body (without header) of API `api_key` in `version`." },
            "pub fn decode(api_key: ApiKey, buf: &mut ::bytes::Bytes, version: i16) -> ::std::result::Result<Self, DecodeError>",
            "api_key",
            arms(&|s| format!("ApiKey::{0} => {1}::decode(buf, version).map({kind}Kind::{0})", variant(s), s.name)),
        );
        match_fn(
            out,
            "A sample body valid for `version`, for tests.\n    #[cfg(test)]",
            "pub(crate) fn sample(api_key: ApiKey, rng: &mut crate::protocol::sample::SampleRng, version: i16) -> Self",
            "api_key",
            arms(&|s| {
                format!(
                    "ApiKey::{0} => {kind}Kind::{0}(<{1} as crate::protocol::sample::Sample>::sample(rng, version))",
                    variant(s),
                    s.name
                )
            }),
        );
        let _ = writeln!(out, "}}\n");
    }

    // Data and header messages, for tests that walk every spec.
    let _ = writeln!(
        out,
        "/// The header and data messages (no API key): name and valid versions."
    );
    let _ = writeln!(
        out,
        "pub const NON_API_MESSAGES: &[(&str, VersionRange)] = &["
    );
    for s in specs.iter().filter(|s| s.api_key.is_none()) {
        let _ = writeln!(
            out,
            "    ({:?}, VersionRange::new({}, {})),",
            s.name, s.valid.min, s.valid.max
        );
    }
    let _ = writeln!(out, "];");
    let _ = writeln!(
        out,
        "/// Round-trips a sample of every header and data message in `version`-range, for tests."
    );
    let _ = writeln!(out, "#[cfg(test)]");
    let _ = writeln!(
        out,
        "pub(crate) fn for_each_non_api_message(mut f: impl FnMut(&str, VersionRange, &dyn Fn(&mut crate::protocol::sample::SampleRng, i16) -> ::std::result::Result<(), ::std::string::String>)) {{"
    );
    for s in specs.iter().filter(|s| s.api_key.is_none()) {
        let _ = writeln!(
            out,
            "    f({:?}, VersionRange::new({}, {}), &|rng, v| crate::protocol::sample::round_trip::<{}>(rng, v));",
            s.name, s.valid.min, s.valid.max, s.name
        );
    }
    let _ = writeln!(out, "}}");
}
