//! How errors leave the server: the one JSON envelope, with the status chosen by the code. Also the
//! fallbacks for requests that never reach a handler (unknown route, wrong method, bad query or path).

use crate::error::{AppError, ErrorCode};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.json(self.body())
    }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| AppError::new(ErrorCode::ValidationFailed, format!("query: {err}")).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| AppError::new(ErrorCode::ValidationFailed, format!("path: {err}")).into())
}

pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    AppError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}
