"""Authentication and authorization resources: TokenReview, SubjectAccessReviews (RBAC
evaluated over the stored objects), TokenRequest, and the review kinds that store nothing.
"""
