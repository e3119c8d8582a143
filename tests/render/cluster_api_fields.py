"""Allowed fields of the kubeadm, kubelet and K3s config files the cluster roles render.

kubeadm and the kubelet read their config files strictly (an unknown field is an error
since kubeadm 1.26 / kubelet strict decoding), but no OpenAPI schema for them ships with
kubernetes-validate, so the field sets are written here as data, taken from the upstream
API types: kubeadm.k8s.io/v1beta3 (Kubernetes 1.22+, the only version 1.29/1.30 read) and
v1beta4 (1.31+), cmd/kubeadm/app/apis/kubeadm/*/types.go and
https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/;
kubelet.config.k8s.io/v1beta1 from
https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/; K3s keys from
https://docs.k3s.io/cli/server and https://docs.k3s.io/cli/agent (config.yaml keys are
the flag names without dashes; a trailing "+" appends).

A schema is a dict field -> sub-schema; LEAF accepts any value (scalars, free-form maps
such as featureGates); ListOf(schema) is a list of objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

LEAF = None


@dataclass(frozen=True)
class ListOf:
    item: "Schema"


Schema = Union[dict, ListOf, None]

TYPE_META = {"apiVersion": LEAF, "kind": LEAF}
TAINT = {"key": LEAF, "value": LEAF, "effect": LEAF, "timeAdded": LEAF}
API_ENDPOINT = {"advertiseAddress": LEAF, "bindPort": LEAF}
BOOTSTRAP_TOKEN = {"token": LEAF, "description": LEAF, "ttl": LEAF, "expires": LEAF, "usages": LEAF, "groups": LEAF}
PATCHES = {"directory": LEAF}
HOST_PATH_MOUNT = {"name": LEAF, "hostPath": LEAF, "mountPath": LEAF, "readOnly": LEAF, "pathType": LEAF}
IMAGE_META = {"imageRepository": LEAF, "imageTag": LEAF}
NETWORKING = {"serviceSubnet": LEAF, "podSubnet": LEAF, "dnsDomain": LEAF}
EXTERNAL_ETCD = {"endpoints": LEAF, "caFile": LEAF, "certFile": LEAF, "keyFile": LEAF}
FILE_DISCOVERY = {"kubeConfigPath": LEAF}
TOKEN_DISCOVERY = {"token": LEAF, "apiServerEndpoint": LEAF, "caCertHashes": LEAF, "unsafeSkipCAVerification": LEAF}


def _v1beta3() -> dict[str, dict]:
    node_registration = {"name": LEAF, "criSocket": LEAF, "taints": ListOf(TAINT), "kubeletExtraArgs": LEAF,
                         "ignorePreflightErrors": LEAF, "imagePullPolicy": LEAF}
    component = {"extraArgs": LEAF, "extraVolumes": ListOf(HOST_PATH_MOUNT)}
    return {
        "InitConfiguration": {**TYPE_META, "bootstrapTokens": ListOf(BOOTSTRAP_TOKEN), "nodeRegistration": node_registration,
                              "localAPIEndpoint": API_ENDPOINT, "certificateKey": LEAF, "skipPhases": LEAF, "patches": PATCHES},
        "ClusterConfiguration": {
            **TYPE_META,
            "etcd": {"local": {**IMAGE_META, "dataDir": LEAF, "extraArgs": LEAF, "serverCertSANs": LEAF, "peerCertSANs": LEAF},
                     "external": EXTERNAL_ETCD},
            "networking": NETWORKING, "kubernetesVersion": LEAF, "controlPlaneEndpoint": LEAF,
            "apiServer": {**component, "certSANs": LEAF, "timeoutForControlPlane": LEAF},
            "controllerManager": component, "scheduler": component, "dns": dict(IMAGE_META),
            "certificatesDir": LEAF, "imageRepository": LEAF, "featureGates": LEAF, "clusterName": LEAF},
        "JoinConfiguration": {
            **TYPE_META, "nodeRegistration": node_registration, "caCertPath": LEAF,
            "discovery": {"bootstrapToken": TOKEN_DISCOVERY, "file": FILE_DISCOVERY, "tlsBootstrapToken": LEAF, "timeout": LEAF},
            "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": LEAF},
            "skipPhases": LEAF, "patches": PATCHES},
    }


def _v1beta4() -> dict[str, dict]:
    # v1beta4: extra args become [{name, value}] lists, extraEnvs, timeouts, dryRun,
    # encryptionAlgorithm, certificate validity periods, dns/proxy.disabled, imagePullSerial;
    # apiServer.timeoutForControlPlane and discovery.timeout moved into `timeouts`.
    arg = ListOf({"name": LEAF, "value": LEAF})
    node_registration = {"name": LEAF, "criSocket": LEAF, "taints": ListOf(TAINT), "kubeletExtraArgs": arg,
                         "ignorePreflightErrors": LEAF, "imagePullPolicy": LEAF, "imagePullSerial": LEAF}
    component = {"extraArgs": arg, "extraVolumes": ListOf(HOST_PATH_MOUNT), "extraEnvs": LEAF}
    timeouts = {"controlPlaneComponentHealthCheck": LEAF, "kubeletHealthCheck": LEAF, "kubernetesAPICall": LEAF,
                "etcdAPICall": LEAF, "tlsBootstrap": LEAF, "discovery": LEAF, "upgradeManifests": LEAF}
    return {
        "InitConfiguration": {**TYPE_META, "bootstrapTokens": ListOf(BOOTSTRAP_TOKEN), "dryRun": LEAF,
                              "nodeRegistration": node_registration, "localAPIEndpoint": API_ENDPOINT,
                              "certificateKey": LEAF, "skipPhases": LEAF, "patches": PATCHES, "timeouts": timeouts},
        "ClusterConfiguration": {
            **TYPE_META,
            "etcd": {"local": {**IMAGE_META, "dataDir": LEAF, "extraArgs": arg, "extraEnvs": LEAF,
                               "serverCertSANs": LEAF, "peerCertSANs": LEAF},
                     "external": {**EXTERNAL_ETCD, "httpEndpoints": LEAF}},
            "networking": NETWORKING, "kubernetesVersion": LEAF, "controlPlaneEndpoint": LEAF,
            "apiServer": {**component, "certSANs": LEAF},
            "controllerManager": component, "scheduler": component,
            "dns": {**IMAGE_META, "disabled": LEAF}, "proxy": {"disabled": LEAF},
            "certificatesDir": LEAF, "imageRepository": LEAF, "featureGates": LEAF, "clusterName": LEAF,
            "encryptionAlgorithm": LEAF, "certificateValidityPeriod": LEAF, "caCertificateValidityPeriod": LEAF},
        "JoinConfiguration": {
            **TYPE_META, "dryRun": LEAF, "nodeRegistration": node_registration, "caCertPath": LEAF,
            "discovery": {"bootstrapToken": TOKEN_DISCOVERY, "file": FILE_DISCOVERY, "tlsBootstrapToken": LEAF},
            "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": LEAF},
            "skipPhases": LEAF, "patches": PATCHES, "timeouts": timeouts},
    }


# Top-level KubeletConfiguration fields; nested objects (authentication, logging...) are LEAF.
KUBELET_FIELDS = set("""
enableServer staticPodPath syncFrequency fileCheckFrequency httpCheckFrequency staticPodURL
staticPodURLHeader address port readOnlyPort tlsCertFile tlsPrivateKeyFile tlsCipherSuites
tlsMinVersion rotateCertificates serverTLSBootstrap authentication authorization registryPullQPS
registryBurst eventRecordQPS eventBurst enableDebuggingHandlers enableContentionProfiling
healthzPort healthzBindAddress oomScoreAdj clusterDomain clusterDNS streamingConnectionIdleTimeout
nodeStatusUpdateFrequency nodeStatusReportFrequency nodeLeaseDurationSeconds imageMinimumGCAge
imageMaximumGCAge imageGCHighThresholdPercent imageGCLowThresholdPercent volumeStatsAggPeriod
kubeletCgroups systemCgroups cgroupRoot cgroupsPerQOS cgroupDriver cpuManagerPolicy
cpuManagerPolicyOptions cpuManagerReconcilePeriod memoryManagerPolicy topologyManagerPolicy
topologyManagerScope topologyManagerPolicyOptions qosReserved runtimeRequestTimeout hairpinMode
maxPods podCIDR podPidsLimit resolvConf runOnce cpuCFSQuota cpuCFSQuotaPeriod nodeStatusMaxImages
maxOpenFiles contentType kubeAPIQPS kubeAPIBurst serializeImagePulls maxParallelImagePulls
evictionHard evictionSoft evictionSoftGracePeriod evictionPressureTransitionPeriod
evictionMaxPodGracePeriod evictionMinimumReclaim podsPerCore enableControllerAttachDetach
protectKernelDefaults makeIPTablesUtilChains iptablesMasqueradeBit iptablesDropBit featureGates
failSwapOn memorySwap containerLogMaxSize containerLogMaxFiles configMapAndSecretChangeDetectionStrategy
systemReserved kubeReserved reservedSystemCPUs showHiddenMetricsForVersion systemReservedCgroup
kubeReservedCgroup enforceNodeAllocatable allowedUnsafeSysctls volumePluginDir providerID
kernelMemcgNotification logging enableSystemLogHandler enableSystemLogQuery shutdownGracePeriod
shutdownGracePeriodCriticalPods shutdownGracePeriodByPodPriority reservedMemory
enableProfilingHandler enableDebugFlagsHandler seccompDefault memoryThrottlingFactor
registerWithTaints registerNode tracing localStorageCapacityIsolation containerRuntimeEndpoint
imageServiceEndpoint
""".split()) | {"apiVersion", "kind"}
# Fields newer than 1.29 (the seeds' version): rejected when rendering for 1.29.
KUBELET_FIELDS_SINCE = {
    "podLogsDir": "1.30", "containerLogMaxWorkers": "1.30", "containerLogMonitorInterval": "1.30",
    "failCgroupV1": "1.31", "singleProcessOOMKill": "1.32", "crashLoopBackOff": "1.32",
    "userNamespaces": "1.32", "imagePullCredentialsVerificationPolicy": "1.33",
    "preloadedImagesVerificationAllowlist": "1.33", "mergeDefaultEvictionSettings": "1.34",
}

KUBEADM_KINDS = {"kubeadm.k8s.io/v1beta3": _v1beta3(), "kubeadm.k8s.io/v1beta4": _v1beta4()}
# Which kubeadm config API each Kubernetes minor reads (v1beta4 from 1.31 on).
KUBEADM_API_FOR = {"1.29": "kubeadm.k8s.io/v1beta3", "1.30": "kubeadm.k8s.io/v1beta3"}

K3S_AGENT_KEYS = set("""
config debug v vmodule log alsologtostderr token token-file server data-dir node-name with-node-id
node-label node-taint image-credential-provider-bin-dir image-credential-provider-config selinux
lb-server-port protect-kernel-defaults container-runtime-endpoint default-runtime
image-service-endpoint disable-default-registry-endpoint nonroot-devices docker prefer-bundled-bin
pause-image snapshotter private-registry system-default-registry airgap-extra-registry node-ip
node-external-ip node-internal-dns node-external-dns resolv-conf flannel-iface flannel-conf
flannel-cni-conf kubelet-arg kube-proxy-arg rootless vpn-auth vpn-auth-file disable-apiserver-lb
bind-address enable-pprof
""".split())
K3S_SERVER_KEYS = K3S_AGENT_KEYS | set("""
advertise-address advertise-port tls-san tls-san-security cluster-cidr service-cidr
service-node-port-range cluster-dns cluster-domain flannel-backend flannel-ipv6-masq
flannel-external-ip egress-selector-mode servicelb-namespace write-kubeconfig write-kubeconfig-mode
write-kubeconfig-group helm-job-image agent-token agent-token-file cluster-init cluster-reset
cluster-reset-restore-path kube-apiserver-arg etcd-arg kube-controller-manager-arg
kube-scheduler-arg kube-cloud-controller-manager-arg kine-tls datastore-endpoint datastore-cafile
datastore-certfile datastore-keyfile etcd-expose-metrics etcd-disable-snapshots etcd-snapshot-name
etcd-snapshot-schedule-cron etcd-snapshot-retention etcd-snapshot-dir etcd-snapshot-compress
etcd-s3 etcd-s3-endpoint etcd-s3-endpoint-ca etcd-s3-skip-ssl-verify etcd-s3-access-key
etcd-s3-secret-key etcd-s3-bucket etcd-s3-region etcd-s3-folder etcd-s3-insecure etcd-s3-timeout
default-local-storage-path disable disable-scheduler disable-cloud-controller disable-kube-proxy
disable-network-policy disable-helm-controller disable-apiserver disable-controller-manager
disable-etcd embedded-registry supervisor-metrics secrets-encryption https-listen-port
supervisor-port apiserver-port apiserver-bind-address
""".split())


def check_fields(doc: Any, schema: Schema, path: str = "") -> list[str]:
    """Errors for every field of `doc` the schema does not know (recursively)."""
    if schema is LEAF:
        return []
    if isinstance(schema, ListOf):
        if not isinstance(doc, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(doc) for e in check_fields(item, schema.item, f"{path}[{i}]")]
    if not isinstance(doc, dict):
        return [f"{path}: expected an object"]
    errors = []
    for key, value in doc.items():
        if key not in schema:
            errors.append(f"{path}.{key}: unknown field" if path else f"{key}: unknown field")
        else:
            errors += check_fields(value, schema[key], f"{path}.{key}" if path else key)
    return errors


def check_kubeadm_document(doc: dict, k8s_minor: str) -> list[str]:
    """Errors for one document of a kubeadm config file rendered for Kubernetes `k8s_minor`."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    where = f"{kind} ({api})"
    if api == "kubelet.config.k8s.io/v1beta1" and kind == "KubeletConfiguration":
        newer = {f for f, since in KUBELET_FIELDS_SINCE.items() if tuple(map(int, since.split("."))) <= tuple(map(int, k8s_minor.split(".")))}
        return [f"{where}: {key}: unknown field" for key in doc if key not in KUBELET_FIELDS | newer]
    expected_api = KUBEADM_API_FOR.get(k8s_minor, "kubeadm.k8s.io/v1beta4")
    if api != expected_api:
        return [f"{where}: Kubernetes {k8s_minor} reads {expected_api}"]
    if kind not in KUBEADM_KINDS[api]:
        return [f"{where}: unknown kind"]
    return [f"{where}: {e}" for e in check_fields(doc, KUBEADM_KINDS[api][kind])]


def check_k3s_config(config: dict, server: bool) -> list[str]:
    allowed = K3S_SERVER_KEYS if server else K3S_AGENT_KEYS
    role = "server" if server else "agent"
    return [f"{key}: not a documented K3s {role} option" for key in config if key.rstrip("+") not in allowed]
