"""Protobuf field tables for core/v1 and meta/v1: every message reachable from the core kinds
kubectl sends as protobuf (``kubectl create namespace|configmap|secret|serviceaccount|service``,
``kubectl debug``), and the meta/v1 messages every group shares.

Data for :mod:`.codec`, in the table format of :mod:`.tables`: field numbers and JSON names
copied from upstream ``k8s.io/api/core/v1`` and ``k8s.io/apimachinery`` (``generated.proto`` and
the Go struct tags in ``types.go``).
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(
    ("v1", kind)
    for kind in (
        "Namespace", "ConfigMap", "Secret", "ServiceAccount",
        "Pod", "Service", "Event", "Endpoints", "LimitRange", "PersistentVolumeClaim",
        "Node", "PersistentVolume", "ReplicationController",
    )
)

# Each
# message maps field number -> (JSON name, type, flags), in the order the Go struct declares
# its fields (which is the order encoding/json writes them).  Types are proto scalars, the
# special types above, or another message in these tables.  Flags: "*"
# repeated, "%" map<string, type>, then one rule letter as described on Field ("o" is the
# default and is left out).  To extend, copy the json and protobuf struct tags from upstream
# types.go (pointer, omitempty and omitzero decide the rule) and check against generated.proto.
# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "TypeMeta": {1: ("apiVersion", "string", ""), 2: ("kind", "string", "")},
    "ObjectMeta": {
        1: ("name", "string", ""), 2: ("generateName", "string", ""),
        3: ("namespace", "string", ""), 4: ("selfLink", "string", ""), 5: ("uid", "string", ""),
        6: ("resourceVersion", "string", ""), 7: ("generation", "int64", ""),
        8: ("creationTimestamp", "Time", "z"), 9: ("deletionTimestamp", "Time", "p"),
        10: ("deletionGracePeriodSeconds", "int64", "p"), 11: ("labels", "string", "%"),
        12: ("annotations", "string", "%"), 13: ("ownerReferences", "OwnerReference", "*"),
        14: ("finalizers", "string", "*"), 17: ("managedFields", "ManagedFieldsEntry", "*"),
    },
    "OwnerReference": {
        5: ("apiVersion", "string", "k"), 1: ("kind", "string", "k"), 3: ("name", "string", "k"),
        4: ("uid", "string", "k"), 6: ("controller", "bool", "p"),
        7: ("blockOwnerDeletion", "bool", "p"),
    },
    "ManagedFieldsEntry": {
        1: ("manager", "string", ""), 2: ("operation", "string", ""),
        3: ("apiVersion", "string", ""), 4: ("time", "Time", "p"), 6: ("fieldsType", "string", ""),
        7: ("fieldsV1", "FieldsV1", "p"), 8: ("subresource", "string", ""),
    },
    "LabelSelector": {
        1: ("matchLabels", "string", "%"), 2: ("matchExpressions", "LabelSelectorRequirement", "*"),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string", "k"), 2: ("operator", "string", "k"), 3: ("values", "string", "*"),
    },
    "Condition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("observedGeneration", "int64", ""), 4: ("lastTransitionTime", "Time", "k"),
        5: ("reason", "string", "k"), 6: ("message", "string", "k"),
    },
    "Namespace": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "NamespaceSpec", "k"),
        3: ("status", "NamespaceStatus", "k"),
    },
    "NamespaceSpec": {
        1: ("finalizers", "string", "*"),
    },
    "NamespaceStatus": {
        1: ("phase", "string", ""), 2: ("conditions", "NamespaceCondition", "*"),
    },
    "NamespaceCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        4: ("lastTransitionTime", "Time", "k"), 5: ("reason", "string", ""),
        6: ("message", "string", ""),
    },
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", "k"), 4: ("immutable", "bool", "p"),
        2: ("data", "string", "%"), 3: ("binaryData", "bytes", "%"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", "k"), 5: ("immutable", "bool", "p"),
        2: ("data", "bytes", "%"), 4: ("stringData", "string", "%"), 3: ("type", "string", ""),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("secrets", "ObjectReference", "*"),
        3: ("imagePullSecrets", "LocalObjectReference", "*"),
        4: ("automountServiceAccountToken", "bool", "p"),
    },
    "ObjectReference": {
        1: ("kind", "string", ""), 2: ("namespace", "string", ""), 3: ("name", "string", ""),
        4: ("uid", "string", ""), 5: ("apiVersion", "string", ""),
        6: ("resourceVersion", "string", ""), 7: ("fieldPath", "string", ""),
    },
    "LocalObjectReference": {
        1: ("name", "string", ""),
    },
    "Pod": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PodSpec", "k"),
        3: ("status", "PodStatus", "k"),
    },
    "PodTemplateSpec": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PodSpec", "k"),
    },
    "PodSpec": {
        1: ("volumes", "Volume", "*"), 20: ("initContainers", "Container", "*"),
        2: ("containers", "Container", "*n"),
        34: ("ephemeralContainers", "EphemeralContainer", "*"), 3: ("restartPolicy", "string", ""),
        4: ("terminationGracePeriodSeconds", "int64", "p"),
        5: ("activeDeadlineSeconds", "int64", "p"), 6: ("dnsPolicy", "string", ""),
        7: ("nodeSelector", "string", "%"), 8: ("serviceAccountName", "string", ""),
        9: ("serviceAccount", "string", ""), 21: ("automountServiceAccountToken", "bool", "p"),
        10: ("nodeName", "string", ""), 11: ("hostNetwork", "bool", ""),
        12: ("hostPID", "bool", ""), 13: ("hostIPC", "bool", ""),
        27: ("shareProcessNamespace", "bool", "p"),
        14: ("securityContext", "PodSecurityContext", "p"),
        15: ("imagePullSecrets", "LocalObjectReference", "*"), 16: ("hostname", "string", ""),
        17: ("subdomain", "string", ""), 18: ("affinity", "Affinity", "p"),
        19: ("schedulerName", "string", ""), 22: ("tolerations", "Toleration", "*"),
        23: ("hostAliases", "HostAlias", "*"), 24: ("priorityClassName", "string", ""),
        25: ("priority", "int32", "p"), 26: ("dnsConfig", "PodDNSConfig", "p"),
        28: ("readinessGates", "PodReadinessGate", "*"), 29: ("runtimeClassName", "string", "p"),
        30: ("enableServiceLinks", "bool", "p"), 31: ("preemptionPolicy", "string", "p"),
        32: ("overhead", "Quantity", "%"),
        33: ("topologySpreadConstraints", "TopologySpreadConstraint", "*"),
        35: ("setHostnameAsFQDN", "bool", "p"), 36: ("os", "PodOS", "p"),
        37: ("hostUsers", "bool", "p"), 38: ("schedulingGates", "PodSchedulingGate", "*"),
        39: ("resourceClaims", "PodResourceClaim", "*"),
        40: ("resources", "ResourceRequirements", "p"), 41: ("hostnameOverride", "string", "p"),
        43: ("schedulingGroup", "PodSchedulingGroup", "p"),
        44: ("evictionResponders", "EvictionResponder", "*"),
    },
    "Volume": {
        1: ("name", "string", "k"), 2: ("", "VolumeSource", "^"),
    },
    "VolumeSource": {
        1: ("hostPath", "HostPathVolumeSource", "p"), 2: ("emptyDir", "EmptyDirVolumeSource", "p"),
        3: ("gcePersistentDisk", "GCEPersistentDiskVolumeSource", "p"),
        4: ("awsElasticBlockStore", "AWSElasticBlockStoreVolumeSource", "p"),
        5: ("gitRepo", "GitRepoVolumeSource", "p"), 6: ("secret", "SecretVolumeSource", "p"),
        7: ("nfs", "NFSVolumeSource", "p"), 8: ("iscsi", "ISCSIVolumeSource", "p"),
        9: ("glusterfs", "GlusterfsVolumeSource", "p"),
        10: ("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource", "p"),
        11: ("rbd", "RBDVolumeSource", "p"), 12: ("flexVolume", "FlexVolumeSource", "p"),
        13: ("cinder", "CinderVolumeSource", "p"), 14: ("cephfs", "CephFSVolumeSource", "p"),
        15: ("flocker", "FlockerVolumeSource", "p"),
        16: ("downwardAPI", "DownwardAPIVolumeSource", "p"), 17: ("fc", "FCVolumeSource", "p"),
        18: ("azureFile", "AzureFileVolumeSource", "p"),
        19: ("configMap", "ConfigMapVolumeSource", "p"),
        20: ("vsphereVolume", "VsphereVirtualDiskVolumeSource", "p"),
        21: ("quobyte", "QuobyteVolumeSource", "p"),
        22: ("azureDisk", "AzureDiskVolumeSource", "p"),
        23: ("photonPersistentDisk", "PhotonPersistentDiskVolumeSource", "p"),
        26: ("projected", "ProjectedVolumeSource", "p"),
        24: ("portworxVolume", "PortworxVolumeSource", "p"),
        25: ("scaleIO", "ScaleIOVolumeSource", "p"),
        27: ("storageos", "StorageOSVolumeSource", "p"), 28: ("csi", "CSIVolumeSource", "p"),
        29: ("ephemeral", "EphemeralVolumeSource", "p"), 30: ("image", "ImageVolumeSource", "p"),
    },
    "HostPathVolumeSource": {
        1: ("path", "string", "k"), 2: ("type", "string", "p"),
    },
    "EmptyDirVolumeSource": {
        1: ("medium", "string", ""), 2: ("sizeLimit", "Quantity", "p"), 3: ("mode", "int32", "p"),
    },
    "GCEPersistentDiskVolumeSource": {
        1: ("pdName", "string", "k"), 2: ("fsType", "string", ""), 3: ("partition", "int32", ""),
        4: ("readOnly", "bool", ""),
    },
    "AWSElasticBlockStoreVolumeSource": {
        1: ("volumeID", "string", "k"), 2: ("fsType", "string", ""), 3: ("partition", "int32", ""),
        4: ("readOnly", "bool", ""),
    },
    "GitRepoVolumeSource": {
        1: ("repository", "string", "k"), 2: ("revision", "string", ""),
        3: ("directory", "string", ""),
    },
    "SecretVolumeSource": {
        1: ("secretName", "string", ""), 2: ("items", "KeyToPath", "*"),
        3: ("defaultMode", "int32", "p"), 4: ("optional", "bool", "p"),
        5: ("defaultUser", "int64", "p"),
    },
    "KeyToPath": {
        1: ("key", "string", "k"), 2: ("path", "string", "k"), 3: ("mode", "int32", "p"),
        4: ("user", "int64", "p"),
    },
    "NFSVolumeSource": {
        1: ("server", "string", "k"), 2: ("path", "string", "k"), 3: ("readOnly", "bool", ""),
    },
    "ISCSIVolumeSource": {
        1: ("targetPortal", "string", "k"), 2: ("iqn", "string", "k"), 3: ("lun", "int32", "k"),
        4: ("iscsiInterface", "string", ""), 5: ("fsType", "string", ""),
        6: ("readOnly", "bool", ""), 7: ("portals", "string", "*"),
        8: ("chapAuthDiscovery", "bool", ""), 11: ("chapAuthSession", "bool", ""),
        10: ("secretRef", "LocalObjectReference", "p"), 12: ("initiatorName", "string", "p"),
    },
    "GlusterfsVolumeSource": {
        1: ("endpoints", "string", "k"), 2: ("path", "string", "k"), 3: ("readOnly", "bool", ""),
    },
    "PersistentVolumeClaimVolumeSource": {
        1: ("claimName", "string", "k"), 2: ("readOnly", "bool", ""),
    },
    "RBDVolumeSource": {
        1: ("monitors", "string", "*n"), 2: ("image", "string", "k"), 3: ("fsType", "string", ""),
        4: ("pool", "string", ""), 5: ("user", "string", ""), 6: ("keyring", "string", ""),
        7: ("secretRef", "LocalObjectReference", "p"), 8: ("readOnly", "bool", ""),
    },
    "FlexVolumeSource": {
        1: ("driver", "string", "k"), 2: ("fsType", "string", ""),
        3: ("secretRef", "LocalObjectReference", "p"), 4: ("readOnly", "bool", ""),
        5: ("options", "string", "%"),
    },
    "CinderVolumeSource": {
        1: ("volumeID", "string", "k"), 2: ("fsType", "string", ""), 3: ("readOnly", "bool", ""),
        4: ("secretRef", "LocalObjectReference", "p"),
    },
    "CephFSVolumeSource": {
        1: ("monitors", "string", "*n"), 2: ("path", "string", ""), 3: ("user", "string", ""),
        4: ("secretFile", "string", ""), 5: ("secretRef", "LocalObjectReference", "p"),
        6: ("readOnly", "bool", ""),
    },
    "FlockerVolumeSource": {
        1: ("datasetName", "string", ""), 2: ("datasetUUID", "string", ""),
    },
    "DownwardAPIVolumeSource": {
        1: ("items", "DownwardAPIVolumeFile", "*"), 2: ("defaultMode", "int32", "p"),
        3: ("defaultUser", "int64", "p"),
    },
    "DownwardAPIVolumeFile": {
        1: ("path", "string", "k"), 2: ("fieldRef", "ObjectFieldSelector", "p"),
        3: ("resourceFieldRef", "ResourceFieldSelector", "p"), 4: ("mode", "int32", "p"),
        5: ("user", "int64", "p"),
    },
    "ObjectFieldSelector": {
        1: ("apiVersion", "string", ""), 2: ("fieldPath", "string", "k"),
    },
    "ResourceFieldSelector": {
        1: ("containerName", "string", ""), 2: ("resource", "string", "k"),
        3: ("divisor", "Quantity", "k"),
    },
    "FCVolumeSource": {
        1: ("targetWWNs", "string", "*"), 2: ("lun", "int32", "p"), 3: ("fsType", "string", ""),
        4: ("readOnly", "bool", ""), 5: ("wwids", "string", "*"),
    },
    "AzureFileVolumeSource": {
        1: ("secretName", "string", "k"), 2: ("shareName", "string", "k"),
        3: ("readOnly", "bool", ""),
    },
    "ConfigMapVolumeSource": {
        1: ("", "LocalObjectReference", "^"), 2: ("items", "KeyToPath", "*"),
        3: ("defaultMode", "int32", "p"), 4: ("optional", "bool", "p"),
        5: ("defaultUser", "int64", "p"),
    },
    "VsphereVirtualDiskVolumeSource": {
        1: ("volumePath", "string", "k"), 2: ("fsType", "string", ""),
        3: ("storagePolicyName", "string", ""), 4: ("storagePolicyID", "string", ""),
    },
    "QuobyteVolumeSource": {
        1: ("registry", "string", "k"), 2: ("volume", "string", "k"), 3: ("readOnly", "bool", ""),
        4: ("user", "string", ""), 5: ("group", "string", ""), 6: ("tenant", "string", ""),
    },
    "AzureDiskVolumeSource": {
        1: ("diskName", "string", "k"), 2: ("diskURI", "string", "k"),
        3: ("cachingMode", "string", "p"), 4: ("fsType", "string", "p"),
        5: ("readOnly", "bool", "p"), 6: ("kind", "string", "p"),
    },
    "PhotonPersistentDiskVolumeSource": {
        1: ("pdID", "string", "k"), 2: ("fsType", "string", ""),
    },
    "ProjectedVolumeSource": {
        1: ("sources", "VolumeProjection", "*n"), 2: ("defaultMode", "int32", "p"),
        3: ("defaultUser", "int64", "p"),
    },
    "VolumeProjection": {
        1: ("secret", "SecretProjection", "p"), 2: ("downwardAPI", "DownwardAPIProjection", "p"),
        3: ("configMap", "ConfigMapProjection", "p"),
        4: ("serviceAccountToken", "ServiceAccountTokenProjection", "p"),
        5: ("clusterTrustBundle", "ClusterTrustBundleProjection", "p"),
        6: ("podCertificate", "PodCertificateProjection", "p"),
    },
    "SecretProjection": {
        1: ("", "LocalObjectReference", "^"), 2: ("items", "KeyToPath", "*"),
        4: ("optional", "bool", "p"),
    },
    "DownwardAPIProjection": {
        1: ("items", "DownwardAPIVolumeFile", "*"),
    },
    "ConfigMapProjection": {
        1: ("", "LocalObjectReference", "^"), 2: ("items", "KeyToPath", "*"),
        4: ("optional", "bool", "p"),
    },
    "ServiceAccountTokenProjection": {
        1: ("audience", "string", ""), 2: ("expirationSeconds", "int64", "p"),
        3: ("path", "string", "k"), 4: ("user", "int64", "p"),
    },
    "ClusterTrustBundleProjection": {
        1: ("name", "string", "p"), 2: ("signerName", "string", "p"),
        3: ("labelSelector", "LabelSelector", "p"), 5: ("optional", "bool", "p"),
        4: ("path", "string", "k"), 6: ("user", "int64", "p"),
    },
    "PodCertificateProjection": {
        1: ("signerName", "string", ""), 2: ("keyType", "string", ""),
        3: ("maxExpirationSeconds", "int32", "p"), 4: ("credentialBundlePath", "string", ""),
        5: ("keyPath", "string", ""), 6: ("certificateChainPath", "string", ""),
        7: ("userAnnotations", "string", "%"), 8: ("user", "int64", "p"),
    },
    "PortworxVolumeSource": {
        1: ("volumeID", "string", "k"), 2: ("fsType", "string", ""), 3: ("readOnly", "bool", ""),
    },
    "ScaleIOVolumeSource": {
        1: ("gateway", "string", "k"), 2: ("system", "string", "k"),
        3: ("secretRef", "LocalObjectReference", "n"), 4: ("sslEnabled", "bool", ""),
        5: ("protectionDomain", "string", ""), 6: ("storagePool", "string", ""),
        7: ("storageMode", "string", ""), 8: ("volumeName", "string", ""),
        9: ("fsType", "string", ""), 10: ("readOnly", "bool", ""),
    },
    "StorageOSVolumeSource": {
        1: ("volumeName", "string", ""), 2: ("volumeNamespace", "string", ""),
        3: ("fsType", "string", ""), 4: ("readOnly", "bool", ""),
        5: ("secretRef", "LocalObjectReference", "p"),
    },
    "CSIVolumeSource": {
        1: ("driver", "string", "k"), 2: ("readOnly", "bool", "p"), 3: ("fsType", "string", "p"),
        4: ("volumeAttributes", "string", "%"),
        5: ("nodePublishSecretRef", "LocalObjectReference", "p"),
    },
    "EphemeralVolumeSource": {
        1: ("volumeClaimTemplate", "PersistentVolumeClaimTemplate", "p"),
    },
    "PersistentVolumeClaimTemplate": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PersistentVolumeClaimSpec", "k"),
    },
    "PersistentVolumeClaimSpec": {
        1: ("accessModes", "string", "*"), 4: ("selector", "LabelSelector", "p"),
        2: ("resources", "VolumeResourceRequirements", "k"), 3: ("volumeName", "string", ""),
        5: ("storageClassName", "string", "p"), 6: ("volumeMode", "string", "p"),
        7: ("dataSource", "TypedLocalObjectReference", "p"),
        8: ("dataSourceRef", "TypedObjectReference", "p"),
        9: ("volumeAttributesClassName", "string", "p"),
    },
    "VolumeResourceRequirements": {
        1: ("limits", "Quantity", "%"), 2: ("requests", "Quantity", "%"),
    },
    "TypedLocalObjectReference": {
        1: ("apiGroup", "string", "n"), 2: ("kind", "string", "k"), 3: ("name", "string", "k"),
    },
    "TypedObjectReference": {
        1: ("apiGroup", "string", "n"), 2: ("kind", "string", "k"), 3: ("name", "string", "k"),
        4: ("namespace", "string", "p"),
    },
    "ImageVolumeSource": {
        1: ("reference", "string", ""), 2: ("pullPolicy", "string", ""),
    },
    "Container": {
        1: ("name", "string", "k"), 2: ("image", "string", ""), 3: ("command", "string", "*"),
        4: ("args", "string", "*"), 5: ("workingDir", "string", ""),
        6: ("ports", "ContainerPort", "*"), 19: ("envFrom", "EnvFromSource", "*"),
        7: ("env", "EnvVar", "*"), 8: ("resources", "ResourceRequirements", "k"),
        23: ("resizePolicy", "ContainerResizePolicy", "*"), 24: ("restartPolicy", "string", "p"),
        25: ("restartPolicyRules", "ContainerRestartRule", "*"),
        9: ("volumeMounts", "VolumeMount", "*"), 21: ("volumeDevices", "VolumeDevice", "*"),
        10: ("livenessProbe", "Probe", "p"), 11: ("readinessProbe", "Probe", "p"),
        22: ("startupProbe", "Probe", "p"), 12: ("lifecycle", "Lifecycle", "p"),
        13: ("terminationMessagePath", "string", ""),
        20: ("terminationMessagePolicy", "string", ""), 14: ("imagePullPolicy", "string", ""),
        15: ("securityContext", "SecurityContext", "p"), 16: ("stdin", "bool", ""),
        17: ("stdinOnce", "bool", ""), 18: ("tty", "bool", ""),
    },
    "ContainerPort": {
        1: ("name", "string", ""), 2: ("hostPort", "int32", ""), 3: ("containerPort", "int32", "k"),
        4: ("protocol", "string", ""), 5: ("hostIP", "string", ""),
    },
    "EnvFromSource": {
        1: ("prefix", "string", ""), 2: ("configMapRef", "ConfigMapEnvSource", "p"),
        3: ("secretRef", "SecretEnvSource", "p"),
    },
    "ConfigMapEnvSource": {
        1: ("", "LocalObjectReference", "^"), 2: ("optional", "bool", "p"),
    },
    "SecretEnvSource": {
        1: ("", "LocalObjectReference", "^"), 2: ("optional", "bool", "p"),
    },
    "EnvVar": {
        1: ("name", "string", "k"), 2: ("value", "string", ""),
        3: ("valueFrom", "EnvVarSource", "p"),
    },
    "EnvVarSource": {
        1: ("fieldRef", "ObjectFieldSelector", "p"),
        2: ("resourceFieldRef", "ResourceFieldSelector", "p"),
        3: ("configMapKeyRef", "ConfigMapKeySelector", "p"),
        4: ("secretKeyRef", "SecretKeySelector", "p"), 5: ("fileKeyRef", "FileKeySelector", "p"),
    },
    "ConfigMapKeySelector": {
        1: ("", "LocalObjectReference", "^"), 2: ("key", "string", "k"),
        3: ("optional", "bool", "p"),
    },
    "SecretKeySelector": {
        1: ("", "LocalObjectReference", "^"), 2: ("key", "string", "k"),
        3: ("optional", "bool", "p"),
    },
    "FileKeySelector": {
        1: ("volumeName", "string", "k"), 2: ("path", "string", "k"), 3: ("key", "string", "k"),
        4: ("optional", "bool", "p"),
    },
    "ResourceRequirements": {
        1: ("limits", "Quantity", "%"), 2: ("requests", "Quantity", "%"),
        3: ("claims", "ResourceClaim", "*"),
    },
    "ResourceClaim": {
        1: ("name", "string", "k"), 2: ("request", "string", ""),
    },
    "ContainerResizePolicy": {
        1: ("resourceName", "string", "k"), 2: ("restartPolicy", "string", "k"),
    },
    "ContainerRestartRule": {
        1: ("action", "string", ""), 2: ("exitCodes", "ContainerRestartRuleOnExitCodes", "p"),
    },
    "ContainerRestartRuleOnExitCodes": {
        1: ("operator", "string", ""), 2: ("values", "int32", "*"),
    },
    "VolumeMount": {
        1: ("name", "string", "k"), 2: ("readOnly", "bool", ""),
        7: ("recursiveReadOnly", "string", "p"), 3: ("mountPath", "string", "k"),
        4: ("subPath", "string", ""), 5: ("mountPropagation", "string", "p"),
        6: ("subPathExpr", "string", ""), 8: ("bindMountOptions", "string", "*"),
    },
    "VolumeDevice": {
        1: ("name", "string", "k"), 2: ("devicePath", "string", "k"),
    },
    "Probe": {
        1: ("", "ProbeHandler", "^"), 2: ("initialDelaySeconds", "int32", ""),
        3: ("timeoutSeconds", "int32", ""), 4: ("periodSeconds", "int32", ""),
        5: ("successThreshold", "int32", ""), 6: ("failureThreshold", "int32", ""),
        7: ("terminationGracePeriodSeconds", "int64", "p"),
    },
    "ProbeHandler": {
        1: ("exec", "ExecAction", "p"), 2: ("httpGet", "HTTPGetAction", "p"),
        3: ("tcpSocket", "TCPSocketAction", "p"), 4: ("grpc", "GRPCAction", "p"),
    },
    "ExecAction": {
        1: ("command", "string", "*"),
    },
    "HTTPGetAction": {
        1: ("path", "string", ""), 2: ("port", "IntOrString", "k"), 3: ("host", "string", ""),
        4: ("scheme", "string", ""), 5: ("httpHeaders", "HTTPHeader", "*"),
        6: ("protocol", "string", "p"),
    },
    "HTTPHeader": {
        1: ("name", "string", "k"), 2: ("value", "string", "k"),
    },
    "TCPSocketAction": {
        1: ("port", "IntOrString", "k"), 2: ("host", "string", ""),
    },
    "GRPCAction": {
        1: ("port", "int32", "k"), 2: ("service", "string", "n"), 3: ("mode", "string", "p"),
    },
    "Lifecycle": {
        1: ("postStart", "LifecycleHandler", "p"), 2: ("preStop", "LifecycleHandler", "p"),
        3: ("stopSignal", "string", "p"),
    },
    "LifecycleHandler": {
        1: ("exec", "ExecAction", "p"), 2: ("httpGet", "HTTPGetAction", "p"),
        3: ("tcpSocket", "TCPSocketAction", "p"), 4: ("sleep", "SleepAction", "p"),
    },
    "SleepAction": {
        1: ("seconds", "int64", "k"),
    },
    "SecurityContext": {
        1: ("capabilities", "Capabilities", "p"), 2: ("privileged", "bool", "p"),
        3: ("seLinuxOptions", "SELinuxOptions", "p"),
        10: ("windowsOptions", "WindowsSecurityContextOptions", "p"),
        4: ("runAsUser", "int64", "p"), 8: ("runAsGroup", "int64", "p"),
        5: ("runAsNonRoot", "bool", "p"), 6: ("readOnlyRootFilesystem", "bool", "p"),
        7: ("allowPrivilegeEscalation", "bool", "p"), 9: ("procMount", "string", "p"),
        11: ("seccompProfile", "SeccompProfile", "p"),
        12: ("appArmorProfile", "AppArmorProfile", "p"),
    },
    "Capabilities": {
        1: ("add", "string", "*"), 2: ("drop", "string", "*"),
    },
    "SELinuxOptions": {
        1: ("user", "string", ""), 2: ("role", "string", ""), 3: ("type", "string", ""),
        4: ("level", "string", ""),
    },
    "WindowsSecurityContextOptions": {
        1: ("gmsaCredentialSpecName", "string", "p"), 2: ("gmsaCredentialSpec", "string", "p"),
        3: ("runAsUserName", "string", "p"), 4: ("hostProcess", "bool", "p"),
    },
    "SeccompProfile": {
        1: ("type", "string", "k"), 2: ("localhostProfile", "string", "p"),
    },
    "AppArmorProfile": {
        1: ("type", "string", "k"), 2: ("localhostProfile", "string", "p"),
    },
    "EphemeralContainer": {
        1: ("", "EphemeralContainerCommon", "^"), 2: ("targetContainerName", "string", ""),
    },
    "PodSecurityContext": {
        1: ("seLinuxOptions", "SELinuxOptions", "p"),
        8: ("windowsOptions", "WindowsSecurityContextOptions", "p"), 2: ("runAsUser", "int64", "p"),
        6: ("runAsGroup", "int64", "p"), 3: ("runAsNonRoot", "bool", "p"),
        4: ("supplementalGroups", "int64", "*"), 12: ("supplementalGroupsPolicy", "string", "p"),
        5: ("fsGroup", "int64", "p"), 7: ("sysctls", "Sysctl", "*"),
        9: ("fsGroupChangePolicy", "string", "p"), 10: ("seccompProfile", "SeccompProfile", "p"),
        11: ("appArmorProfile", "AppArmorProfile", "p"), 13: ("seLinuxChangePolicy", "string", "p"),
    },
    "Sysctl": {
        1: ("name", "string", "k"), 2: ("value", "string", "k"),
    },
    "Affinity": {
        1: ("nodeAffinity", "NodeAffinity", "p"), 2: ("podAffinity", "PodAffinity", "p"),
        3: ("podAntiAffinity", "PodAntiAffinity", "p"),
    },
    "NodeAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector", "p"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm", "*"),
    },
    "NodeSelector": {
        1: ("nodeSelectorTerms", "NodeSelectorTerm", "*n"),
    },
    "NodeSelectorTerm": {
        1: ("matchExpressions", "NodeSelectorRequirement", "*"),
        2: ("matchFields", "NodeSelectorRequirement", "*"),
    },
    "NodeSelectorRequirement": {
        1: ("key", "string", "k"), 2: ("operator", "string", "k"), 3: ("values", "string", "*"),
    },
    "PreferredSchedulingTerm": {
        1: ("weight", "int32", "k"), 2: ("preference", "NodeSelectorTerm", "k"),
    },
    "PodAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm", "*"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm", "*"),
    },
    "PodAffinityTerm": {
        1: ("labelSelector", "LabelSelector", "p"), 2: ("namespaces", "string", "*"),
        3: ("topologyKey", "string", "k"), 4: ("namespaceSelector", "LabelSelector", "p"),
        5: ("matchLabelKeys", "string", "*"), 6: ("mismatchLabelKeys", "string", "*"),
    },
    "WeightedPodAffinityTerm": {
        1: ("weight", "int32", "k"), 2: ("podAffinityTerm", "PodAffinityTerm", "k"),
    },
    "PodAntiAffinity": {
        1: ("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm", "*"),
        2: ("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm", "*"),
    },
    "Toleration": {
        1: ("key", "string", ""), 2: ("operator", "string", ""), 3: ("value", "string", ""),
        4: ("effect", "string", ""), 5: ("tolerationSeconds", "int64", "p"),
    },
    "HostAlias": {
        1: ("ip", "string", "k"), 2: ("hostnames", "string", "*"),
    },
    "PodDNSConfig": {
        1: ("nameservers", "string", "*"), 2: ("searches", "string", "*"),
        3: ("options", "PodDNSConfigOption", "*"),
    },
    "PodDNSConfigOption": {
        1: ("name", "string", ""), 2: ("value", "string", "p"),
    },
    "PodReadinessGate": {
        1: ("conditionType", "string", "k"),
    },
    "TopologySpreadConstraint": {
        1: ("maxSkew", "int32", "k"), 2: ("topologyKey", "string", "k"),
        3: ("whenUnsatisfiable", "string", "k"), 4: ("labelSelector", "LabelSelector", "p"),
        5: ("minDomains", "int32", "p"), 6: ("nodeAffinityPolicy", "string", "p"),
        7: ("nodeTaintsPolicy", "string", "p"), 8: ("matchLabelKeys", "string", "*"),
    },
    "PodOS": {
        1: ("name", "string", "k"),
    },
    "PodSchedulingGate": {
        1: ("name", "string", "k"),
    },
    "PodResourceClaim": {
        1: ("name", "string", "k"), 3: ("resourceClaimName", "string", "p"),
        4: ("resourceClaimTemplateName", "string", "p"),
    },
    "PodSchedulingGroup": {
        1: ("podGroupName", "string", "p"),
    },
    "EvictionResponder": {
        1: ("name", "string", "k"), 2: ("priority", "int32", "n"),
    },
    "PodStatus": {
        17: ("observedGeneration", "int64", ""), 1: ("phase", "string", ""),
        2: ("conditions", "PodCondition", "*"), 3: ("message", "string", ""),
        4: ("reason", "string", ""), 11: ("nominatedNodeName", "string", ""),
        5: ("hostIP", "string", ""), 16: ("hostIPs", "HostIP", "*"), 6: ("podIP", "string", ""),
        12: ("podIPs", "PodIP", "*"), 7: ("startTime", "Time", "p"),
        10: ("initContainerStatuses", "ContainerStatus", "*"),
        8: ("containerStatuses", "ContainerStatus", "*"), 9: ("qosClass", "string", ""),
        13: ("ephemeralContainerStatuses", "ContainerStatus", "*"), 14: ("resize", "string", ""),
        15: ("resourceClaimStatuses", "PodResourceClaimStatus", "*"),
        18: ("extendedResourceClaimStatus", "PodExtendedResourceClaimStatus", "p"),
        19: ("allocatedResources", "Quantity", "%"), 20: ("resources", "ResourceRequirements", "p"),
        21: ("nodeAllocatableResourceClaimStatuses", "NodeAllocatableResourceClaimStatus", "*"),
        22: ("volumeHealth", "PodVolumeHealth", "*"),
    },
    "PodCondition": {
        1: ("type", "string", "k"), 7: ("observedGeneration", "int64", ""),
        2: ("status", "string", "k"), 3: ("lastProbeTime", "Time", "k"),
        4: ("lastTransitionTime", "Time", "k"), 5: ("reason", "string", ""),
        6: ("message", "string", ""),
    },
    "HostIP": {
        1: ("ip", "string", "k"),
    },
    "PodIP": {
        1: ("ip", "string", "k"),
    },
    "ContainerStatus": {
        1: ("name", "string", "k"), 2: ("state", "ContainerState", "k"),
        3: ("lastState", "ContainerState", "k"), 4: ("ready", "bool", "k"),
        5: ("restartCount", "int32", "k"), 6: ("image", "string", "k"),
        7: ("imageID", "string", "k"), 8: ("containerID", "string", ""),
        9: ("started", "bool", "p"), 10: ("allocatedResources", "Quantity", "%"),
        11: ("resources", "ResourceRequirements", "p"),
        12: ("volumeMounts", "VolumeMountStatus", "*"), 13: ("user", "ContainerUser", "p"),
        14: ("allocatedResourcesStatus", "ResourceStatus", "*"), 15: ("stopSignal", "string", "p"),
    },
    "ContainerState": {
        1: ("waiting", "ContainerStateWaiting", "p"), 2: ("running", "ContainerStateRunning", "p"),
        3: ("terminated", "ContainerStateTerminated", "p"),
    },
    "ContainerStateWaiting": {
        1: ("reason", "string", ""), 2: ("message", "string", ""),
    },
    "ContainerStateRunning": {
        1: ("startedAt", "Time", "k"),
    },
    "ContainerStateTerminated": {
        1: ("exitCode", "int32", "k"), 2: ("signal", "int32", ""), 3: ("reason", "string", ""),
        4: ("message", "string", ""), 5: ("startedAt", "Time", "k"), 6: ("finishedAt", "Time", "k"),
        7: ("containerID", "string", ""),
    },
    "VolumeMountStatus": {
        1: ("name", "string", "k"), 2: ("mountPath", "string", "k"), 3: ("readOnly", "bool", ""),
        4: ("recursiveReadOnly", "string", "p"), 5: ("volumeStatus", "VolumeStatus", "p"),
    },
    "VolumeStatus": {
        1: ("image", "ImageVolumeStatus", "p"),
    },
    "ImageVolumeStatus": {
        1: ("imageRef", "string", ""),
    },
    "ContainerUser": {
        1: ("linux", "LinuxContainerUser", "p"),
    },
    "LinuxContainerUser": {
        1: ("uid", "int64", "k"), 2: ("gid", "int64", "k"), 3: ("supplementalGroups", "int64", "*"),
    },
    "ResourceStatus": {
        1: ("name", "string", "k"), 2: ("resources", "ResourceHealth", "*"),
    },
    "ResourceHealth": {
        1: ("resourceID", "string", "k"), 2: ("health", "string", ""),
        6: ("message", "string", "p"),
    },
    "PodResourceClaimStatus": {
        1: ("name", "string", "k"), 2: ("resourceClaimName", "string", "p"),
    },
    "PodExtendedResourceClaimStatus": {
        1: ("requestMappings", "ContainerExtendedResourceRequest", "*n"),
        2: ("resourceClaimName", "string", "k"),
    },
    "ContainerExtendedResourceRequest": {
        1: ("containerName", "string", "k"), 2: ("resourceName", "string", "k"),
        3: ("requestName", "string", "k"),
    },
    "NodeAllocatableResourceClaimStatus": {
        1: ("resourceClaimName", "string", "k"), 2: ("containers", "string", "*"),
        4: ("mapping", "NodeAllocatableMappedResources", "*"),
        5: ("overhead", "NodeAllocatableOverheadResources", "*"),
    },
    "NodeAllocatableMappedResources": {
        1: ("name", "string", "k"), 2: ("quantity", "Quantity", "n"),
    },
    "NodeAllocatableOverheadResources": {
        1: ("name", "string", "k"), 2: ("perPod", "Quantity", "p"),
        3: ("perContainer", "Quantity", "p"),
    },
    "PodVolumeHealth": {
        1: ("name", "string", "k"), 2: ("healthConditions", "VolumeHealthCondition", "*"),
        3: ("lastTransitionTime", "Time", "k"),
    },
    "VolumeHealthCondition": {
        1: ("status", "string", "k"), 2: ("reason", "string", "k"), 3: ("message", "string", ""),
    },
    "Service": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "ServiceSpec", "k"),
        3: ("status", "ServiceStatus", "k"),
    },
    "ServiceSpec": {
        1: ("ports", "ServicePort", "*"), 2: ("selector", "string", "%"),
        3: ("clusterIP", "string", ""), 18: ("clusterIPs", "string", "*"),
        4: ("type", "string", ""), 5: ("externalIPs", "string", "*"),
        7: ("sessionAffinity", "string", ""), 8: ("loadBalancerIP", "string", ""),
        9: ("loadBalancerSourceRanges", "string", "*"), 10: ("externalName", "string", ""),
        11: ("externalTrafficPolicy", "string", ""), 12: ("healthCheckNodePort", "int32", ""),
        13: ("publishNotReadyAddresses", "bool", ""),
        14: ("sessionAffinityConfig", "SessionAffinityConfig", "p"),
        19: ("ipFamilies", "string", "*"), 17: ("ipFamilyPolicy", "string", "p"),
        20: ("allocateLoadBalancerNodePorts", "bool", "p"),
        21: ("loadBalancerClass", "string", "p"), 22: ("internalTrafficPolicy", "string", "p"),
        23: ("trafficDistribution", "string", "p"),
    },
    "ServicePort": {
        1: ("name", "string", ""), 2: ("protocol", "string", ""), 6: ("appProtocol", "string", "p"),
        3: ("port", "int32", "k"), 4: ("targetPort", "IntOrString", "k"),
        5: ("nodePort", "int32", ""),
    },
    "SessionAffinityConfig": {
        1: ("clientIP", "ClientIPConfig", "p"),
    },
    "ClientIPConfig": {
        1: ("timeoutSeconds", "int32", "p"),
    },
    "ServiceStatus": {
        1: ("loadBalancer", "LoadBalancerStatus", "k"), 2: ("conditions", "Condition", "*"),
    },
    "LoadBalancerStatus": {
        1: ("ingress", "LoadBalancerIngress", "*"),
    },
    "LoadBalancerIngress": {
        1: ("ip", "string", ""), 2: ("hostname", "string", ""), 3: ("ipMode", "string", "p"),
        4: ("ports", "PortStatus", "*"),
    },
    "PortStatus": {
        1: ("port", "int32", "k"), 2: ("protocol", "string", "k"), 3: ("error", "string", "p"),
    },
    "Event": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("involvedObject", "ObjectReference", "k"),
        3: ("reason", "string", ""), 4: ("message", "string", ""),
        5: ("source", "EventSource", "k"), 6: ("firstTimestamp", "Time", "k"),
        7: ("lastTimestamp", "Time", "k"), 8: ("count", "int32", ""), 9: ("type", "string", ""),
        10: ("eventTime", "MicroTime", "k"), 11: ("series", "EventSeries", "p"),
        12: ("action", "string", ""), 13: ("related", "ObjectReference", "p"),
        14: ("reportingComponent", "string", "k"), 15: ("reportingInstance", "string", "k"),
    },
    "EventSource": {
        1: ("component", "string", ""), 2: ("host", "string", ""),
    },
    "EventSeries": {
        1: ("count", "int32", ""), 2: ("lastObservedTime", "MicroTime", "k"),
    },
    "Endpoints": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("subsets", "EndpointSubset", "*"),
    },
    # No kubectl command sends a LimitRange as protobuf (there is no ``kubectl create
    # limitrange``; ``create -f`` and ``apply`` send JSON); a Go client may, and
    # fieldvalidation reads the kind's fields here.
    "LimitRange": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "LimitRangeSpec", "k"),
    },
    "LimitRangeSpec": {
        1: ("limits", "LimitRangeItem", "*n"),
    },
    "LimitRangeItem": {
        1: ("type", "string", "k"), 2: ("max", "Quantity", "%"), 3: ("min", "Quantity", "%"),
        4: ("default", "Quantity", "%"), 5: ("defaultRequest", "Quantity", "%"),
        6: ("maxLimitRequestRatio", "Quantity", "%"),
    },
    "EndpointSubset": {
        1: ("addresses", "EndpointAddress", "*"), 2: ("notReadyAddresses", "EndpointAddress", "*"),
        3: ("ports", "EndpointPort", "*"),
    },
    "EndpointAddress": {
        1: ("ip", "string", "k"), 3: ("hostname", "string", ""), 4: ("nodeName", "string", "p"),
        2: ("targetRef", "ObjectReference", "p"),
    },
    "EndpointPort": {
        1: ("name", "string", ""), 2: ("port", "int32", "k"), 3: ("protocol", "string", ""),
        4: ("appProtocol", "string", "p"),
    },
    "PersistentVolumeClaim": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PersistentVolumeClaimSpec", "k"),
        3: ("status", "PersistentVolumeClaimStatus", "k"),
    },
    "PersistentVolumeClaimStatus": {
        1: ("phase", "string", ""), 2: ("accessModes", "string", "*"),
        3: ("capacity", "Quantity", "%"), 4: ("conditions", "PersistentVolumeClaimCondition", "*"),
        5: ("allocatedResources", "Quantity", "%"),
        7: ("allocatedResourceStatuses", "string", "%"),
        8: ("currentVolumeAttributesClassName", "string", "p"),
        9: ("modifyVolumeStatus", "ModifyVolumeStatus", "p"),
    },
    "PersistentVolumeClaimCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastProbeTime", "Time", "k"), 4: ("lastTransitionTime", "Time", "k"),
        5: ("reason", "string", ""), 6: ("message", "string", ""),
    },
    "ModifyVolumeStatus": {
        1: ("targetVolumeAttributesClassName", "string", ""), 2: ("status", "string", "k"),
    },
    "Node": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "NodeSpec", "k"),
        3: ("status", "NodeStatus", "k"),
    },
    "PersistentVolume": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PersistentVolumeSpec", "k"),
        3: ("status", "PersistentVolumeStatus", "k"),
    },
    "ReplicationController": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "ReplicationControllerSpec", "k"),
        3: ("status", "ReplicationControllerStatus", "k"),
    },
    "TopologySelectorTerm": {
        1: ("matchLabelExpressions", "TopologySelectorLabelRequirement", "*"),
    },
    "NodeSpec": {
        1: ("podCIDR", "string", ""), 7: ("podCIDRs", "string", "*"),
        3: ("providerID", "string", ""), 4: ("unschedulable", "bool", ""),
        5: ("taints", "Taint", "*"), 6: ("configSource", "NodeConfigSource", "p"),
        2: ("externalID", "string", ""),
        8: ("podPreemptionPolicy", "NodePodPreemptionPolicy", "p"),
    },
    "NodeStatus": {
        1: ("capacity", "Quantity", "%"), 2: ("allocatable", "Quantity", "%"),
        3: ("phase", "string", ""), 4: ("conditions", "NodeCondition", "*"),
        5: ("addresses", "NodeAddress", "*"), 6: ("daemonEndpoints", "NodeDaemonEndpoints", "k"),
        7: ("nodeInfo", "NodeSystemInfo", "k"), 8: ("images", "ContainerImage", "*"),
        9: ("volumesInUse", "string", "*"), 10: ("volumesAttached", "AttachedVolume", "*"),
        11: ("config", "NodeConfigStatus", "p"),
        12: ("runtimeHandlers", "NodeRuntimeHandler", "*"), 13: ("features", "NodeFeatures", "p"),
        14: ("declaredFeatures", "string", "*"),
    },
    "PersistentVolumeSpec": {
        1: ("capacity", "Quantity", "%"), 2: ("", "PersistentVolumeSource", "^"),
        3: ("accessModes", "string", "*"), 4: ("claimRef", "ObjectReference", "p"),
        5: ("persistentVolumeReclaimPolicy", "string", ""), 6: ("storageClassName", "string", ""),
        7: ("mountOptions", "string", "*"), 8: ("volumeMode", "string", "p"),
        9: ("nodeAffinity", "VolumeNodeAffinity", "p"),
        10: ("volumeAttributesClassName", "string", "p"),
    },
    "PersistentVolumeStatus": {
        1: ("phase", "string", ""), 2: ("message", "string", ""), 3: ("reason", "string", ""),
        4: ("lastPhaseTransitionTime", "Time", "p"),
    },
    "ReplicationControllerSpec": {
        1: ("replicas", "int32", "p"), 4: ("minReadySeconds", "int32", ""),
        2: ("selector", "string", "%"), 3: ("template", "PodTemplateSpec", "p"),
    },
    "ReplicationControllerStatus": {
        1: ("replicas", "int32", "k"), 2: ("fullyLabeledReplicas", "int32", ""),
        4: ("readyReplicas", "int32", ""), 5: ("availableReplicas", "int32", ""),
        3: ("observedGeneration", "int64", ""),
        6: ("conditions", "ReplicationControllerCondition", "*"),
    },
    "TopologySelectorLabelRequirement": {
        1: ("key", "string", "k"), 2: ("values", "string", "*n"),
    },
    "Taint": {
        1: ("key", "string", "k"), 2: ("value", "string", ""), 3: ("effect", "string", "k"),
        4: ("timeAdded", "Time", "p"),
    },
    "NodeConfigSource": {
        2: ("configMap", "ConfigMapNodeConfigSource", "p"),
    },
    "NodePodPreemptionPolicy": {
        1: ("disableResizePreemption", "string", "*"),
    },
    "NodeCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastHeartbeatTime", "Time", "k"), 4: ("lastTransitionTime", "Time", "k"),
        5: ("reason", "string", ""), 6: ("message", "string", ""),
    },
    "NodeAddress": {
        1: ("type", "string", "k"), 2: ("address", "string", "k"),
    },
    "NodeDaemonEndpoints": {
        1: ("kubeletEndpoint", "DaemonEndpoint", "k"),
    },
    "NodeSystemInfo": {
        1: ("machineID", "string", "k"), 2: ("systemUUID", "string", "k"),
        3: ("bootID", "string", "k"), 4: ("kernelVersion", "string", "k"),
        5: ("osImage", "string", "k"), 6: ("containerRuntimeVersion", "string", "k"),
        7: ("kubeletVersion", "string", "k"), 8: ("kubeProxyVersion", "string", "k"),
        9: ("operatingSystem", "string", "k"), 10: ("architecture", "string", "k"),
        11: ("swap", "NodeSwapStatus", "p"),
    },
    "ContainerImage": {
        1: ("names", "string", "*n"), 2: ("sizeBytes", "int64", ""),
    },
    "AttachedVolume": {
        1: ("name", "string", "k"), 2: ("devicePath", "string", "k"),
    },
    "NodeConfigStatus": {
        1: ("assigned", "NodeConfigSource", "p"), 2: ("active", "NodeConfigSource", "p"),
        3: ("lastKnownGood", "NodeConfigSource", "p"), 4: ("error", "string", ""),
    },
    "NodeRuntimeHandler": {
        1: ("name", "string", "k"), 2: ("features", "NodeRuntimeHandlerFeatures", "p"),
    },
    "NodeFeatures": {
        1: ("supplementalGroupsPolicy", "bool", "p"),
    },
    "PersistentVolumeSource": {
        1: ("gcePersistentDisk", "GCEPersistentDiskVolumeSource", "p"),
        2: ("awsElasticBlockStore", "AWSElasticBlockStoreVolumeSource", "p"),
        3: ("hostPath", "HostPathVolumeSource", "p"),
        4: ("glusterfs", "GlusterfsPersistentVolumeSource", "p"),
        5: ("nfs", "NFSVolumeSource", "p"), 6: ("rbd", "RBDPersistentVolumeSource", "p"),
        7: ("iscsi", "ISCSIPersistentVolumeSource", "p"),
        8: ("cinder", "CinderPersistentVolumeSource", "p"),
        9: ("cephfs", "CephFSPersistentVolumeSource", "p"), 10: ("fc", "FCVolumeSource", "p"),
        11: ("flocker", "FlockerVolumeSource", "p"),
        12: ("flexVolume", "FlexPersistentVolumeSource", "p"),
        13: ("azureFile", "AzureFilePersistentVolumeSource", "p"),
        14: ("vsphereVolume", "VsphereVirtualDiskVolumeSource", "p"),
        15: ("quobyte", "QuobyteVolumeSource", "p"),
        16: ("azureDisk", "AzureDiskVolumeSource", "p"),
        17: ("photonPersistentDisk", "PhotonPersistentDiskVolumeSource", "p"),
        18: ("portworxVolume", "PortworxVolumeSource", "p"),
        19: ("scaleIO", "ScaleIOPersistentVolumeSource", "p"),
        20: ("local", "LocalVolumeSource", "p"),
        21: ("storageos", "StorageOSPersistentVolumeSource", "p"),
        22: ("csi", "CSIPersistentVolumeSource", "p"),
    },
    "VolumeNodeAffinity": {
        1: ("required", "NodeSelector", "p"),
    },
    "ReplicationControllerCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastTransitionTime", "Time", "k"), 4: ("reason", "string", ""),
        5: ("message", "string", ""),
    },
    "ConfigMapNodeConfigSource": {
        1: ("namespace", "string", "k"), 2: ("name", "string", "k"), 3: ("uid", "string", ""),
        4: ("resourceVersion", "string", ""), 5: ("kubeletConfigKey", "string", "k"),
    },
    "DaemonEndpoint": {
        1: ("Port", "int32", "k"),
    },
    "NodeSwapStatus": {
        1: ("capacity", "int64", "p"),
    },
    "NodeRuntimeHandlerFeatures": {
        1: ("recursiveReadOnlyMounts", "bool", "p"), 2: ("userNamespaces", "bool", "p"),
    },
    "GlusterfsPersistentVolumeSource": {
        1: ("endpoints", "string", "k"), 2: ("path", "string", "k"), 3: ("readOnly", "bool", ""),
        4: ("endpointsNamespace", "string", "p"),
    },
    "RBDPersistentVolumeSource": {
        1: ("monitors", "string", "*n"), 2: ("image", "string", "k"), 3: ("fsType", "string", ""),
        4: ("pool", "string", ""), 5: ("user", "string", ""), 6: ("keyring", "string", ""),
        7: ("secretRef", "SecretReference", "p"), 8: ("readOnly", "bool", ""),
    },
    "ISCSIPersistentVolumeSource": {
        1: ("targetPortal", "string", "k"), 2: ("iqn", "string", "k"), 3: ("lun", "int32", "k"),
        4: ("iscsiInterface", "string", ""), 5: ("fsType", "string", ""),
        6: ("readOnly", "bool", ""), 7: ("portals", "string", "*"),
        8: ("chapAuthDiscovery", "bool", ""), 11: ("chapAuthSession", "bool", ""),
        10: ("secretRef", "SecretReference", "p"), 12: ("initiatorName", "string", "p"),
    },
    "CinderPersistentVolumeSource": {
        1: ("volumeID", "string", "k"), 2: ("fsType", "string", ""), 3: ("readOnly", "bool", ""),
        4: ("secretRef", "SecretReference", "p"),
    },
    "CephFSPersistentVolumeSource": {
        1: ("monitors", "string", "*n"), 2: ("path", "string", ""), 3: ("user", "string", ""),
        4: ("secretFile", "string", ""), 5: ("secretRef", "SecretReference", "p"),
        6: ("readOnly", "bool", ""),
    },
    "FlexPersistentVolumeSource": {
        1: ("driver", "string", "k"), 2: ("fsType", "string", ""),
        3: ("secretRef", "SecretReference", "p"), 4: ("readOnly", "bool", ""),
        5: ("options", "string", "%"),
    },
    "AzureFilePersistentVolumeSource": {
        1: ("secretName", "string", "k"), 2: ("shareName", "string", "k"),
        3: ("readOnly", "bool", ""), 4: ("secretNamespace", "string", "n"),
    },
    "ScaleIOPersistentVolumeSource": {
        1: ("gateway", "string", "k"), 2: ("system", "string", "k"),
        3: ("secretRef", "SecretReference", "n"), 4: ("sslEnabled", "bool", ""),
        5: ("protectionDomain", "string", ""), 6: ("storagePool", "string", ""),
        7: ("storageMode", "string", ""), 8: ("volumeName", "string", ""),
        9: ("fsType", "string", ""), 10: ("readOnly", "bool", ""),
    },
    "LocalVolumeSource": {
        1: ("path", "string", "k"), 2: ("fsType", "string", "p"),
    },
    "StorageOSPersistentVolumeSource": {
        1: ("volumeName", "string", ""), 2: ("volumeNamespace", "string", ""),
        3: ("fsType", "string", ""), 4: ("readOnly", "bool", ""),
        5: ("secretRef", "ObjectReference", "p"),
    },
    "CSIPersistentVolumeSource": {
        1: ("driver", "string", "k"), 2: ("volumeHandle", "string", "k"),
        3: ("readOnly", "bool", ""), 4: ("fsType", "string", ""),
        5: ("volumeAttributes", "string", "%"),
        6: ("controllerPublishSecretRef", "SecretReference", "p"),
        7: ("nodeStageSecretRef", "SecretReference", "p"),
        8: ("nodePublishSecretRef", "SecretReference", "p"),
        9: ("controllerExpandSecretRef", "SecretReference", "p"),
        10: ("nodeExpandSecretRef", "SecretReference", "p"),
    },
    "SecretReference": {
        1: ("name", "string", ""), 2: ("namespace", "string", ""),
    },
}
# fmt: on

# k8s.io/api declares EphemeralContainerCommon with Container's fields, numbers and tags.
MESSAGES["EphemeralContainerCommon"] = MESSAGES["Container"]
