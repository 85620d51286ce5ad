//! Extractors: who is calling (bearer token → principal) and JSON bodies with errors that name the field.

use crate::actors::ask;
use crate::actors::directory::messages::Authenticate;
use crate::domain::Principal;
use crate::error::{AppError, ErrorCode};
use crate::runtime::Handles;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

/// The authenticated caller. Missing or unknown token → 401; a suspended agent's token → 403.
pub struct Caller(pub Principal);

pub(super) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

impl FromRequest for Caller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Caller, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req);
        let handles = req.app_data::<web::Data<Handles>>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| {
                AppError::new(
                    ErrorCode::Unauthorized,
                    "missing bearer token (Authorization: Bearer <token>)",
                )
            })?;
            let handles = handles.ok_or_else(|| AppError::internal("runtime handles are not registered"))?;
            let principal = ask(&handles.directory, Authenticate { token }).await?;
            Ok(Caller(principal))
        })
    }
}

/// A required JSON body. Syntax errors → 400 `invalid_json`; shape errors (missing or unknown field, wrong
/// type, unknown enum value) → 400 `validation_failed` naming the field; too large → 413.
pub struct Json<T>(pub T);

/// A JSON body that may be absent: an empty body means `T::default()`.
pub struct OptionalJson<T>(pub T);

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Two steps: any syntax error is `invalid_json`; every shape error after that is `validation_failed` with the
    // path of the field at fault.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        // serde would accept an array as a struct, filling fields by position: refuse that explicitly.
        return Err(AppError::new(
            ErrorCode::ValidationFailed,
            "body: must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if path != "." && !path.is_empty() {
            return AppError::validation(&path, inner);
        }
        match missing_field(&inner) {
            Some(field) => AppError::validation(field, "is required"),
            None => AppError::new(ErrorCode::ValidationFailed, format!("body: {inner}")),
        }
    })
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn read_body(req: &HttpRequest, payload: &mut Payload) -> LocalBoxFuture<'static, Result<web::Bytes, AppError>> {
    // Bodies are always JSON, whatever the Content-Type says: `curl -d` sends form encoding by default.
    let bytes = web::Bytes::from_request(req, payload);
    Box::pin(async move {
        bytes.await.map_err(|e| match e.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => AppError::new(
                ErrorCode::PayloadTooLarge,
                "request body is larger than the configured limit",
            ),
            _ => AppError::new(ErrorCode::InvalidJson, format!("cannot read body: {e}")),
        })
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Json<T>, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(AppError::new(ErrorCode::InvalidJson, "a JSON body is required"));
            }
            parse(&bytes).map(Json)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<OptionalJson<T>, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            parse(&bytes).map(OptionalJson)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::TaskDraft;

    #[test]
    fn syntax_errors_are_invalid_json() {
        let err = parse::<TaskDraft>(b"{\"title\": ").err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = parse::<TaskDraft>(br#"{"title": "x", "priority": "P9"}"#)
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert!(err.message.starts_with("priority"), "{}", err.message);
        let err = parse::<TaskDraft>(br#"{"title": 5}"#).err().unwrap();
        assert!(err.message.starts_with("title"), "{}", err.message);
        let err = parse::<TaskDraft>(br#"{"description": "x"}"#).err().unwrap();
        assert!(err.message.starts_with("title"), "{}", err.message);
        assert_eq!(err.details, Some(serde_json::json!({"field": "title"})));
        let err = parse::<TaskDraft>(br#"{"title": "x", "priority": 1}"#).err().unwrap();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
        assert!(err.message.starts_with("priority"), "{}", err.message);
        let err = parse::<TaskDraft>(br#"{"title": "x", "bogus": 1}"#).err().unwrap();
        assert!(err.message.contains("bogus"), "{}", err.message);
    }

    #[test]
    fn arrays_are_not_objects() {
        let err = parse::<TaskDraft>(br#"["x"]"#).err().unwrap();
        assert_eq!(err.code, ErrorCode::ValidationFailed);
    }

    #[test]
    fn trailing_garbage_is_refused() {
        assert!(parse::<TaskDraft>(br#"{"title": "x"} trailing"#).is_err());
    }
}
